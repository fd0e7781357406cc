"""Deterministic, order-independent held-out selection of documents.

A document is held out when a hash of (seed, its index in the source) falls below `fraction`. Unlike a
random permutation this needs no length up front, so it works for streaming sources, and unlike per-shard
RNGs it gives the same split whatever the number of worker processes.
"""

from __future__ import annotations

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: a cheap, well-mixed 64-bit hash (Steele et al. 2014).
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def held_out_mask(indices: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask: True where document `indices[i]` belongs to the held-out part.

    Example:
        >>> held_out_mask(np.arange(100_000), 0.01, seed=0).mean().round(2)
        np.float64(0.01)
    """
    if fraction <= 0:
        return np.zeros(len(indices), dtype=bool)
    return hash_uniform(indices, seed) < fraction


def hash_uniform(indices: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per index, a fixed function of (seed, index); cut it into ranges to split."""
    keys = np.asarray(indices, dtype=np.uint64) ^ _splitmix64(np.full(1, seed, dtype=np.uint64))
    return (_splitmix64(keys) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class HeldOutStream:
    """Splits a stream of text batches into training batches and a bounded held-out sample, by `held_out_mask`
    over each document's position in the stream (so the split does not depend on the batch size).

    Example:
        >>> split = HeldOutStream(fraction=0.01, max_held_out=1000)
        >>> for batch in split.training_batches(batches): ...      # held-out documents are left out
        >>> split.held_out[:2], split.documents, split.held_out_count
    """

    def __init__(self, fraction: float, max_held_out: int, seed: int = 0):
        self.fraction, self.max_held_out, self.seed = fraction, max_held_out, seed
        self.held_out: list[str] = []  # at most max_held_out of the held-out documents, in order
        self.documents = 0
        self.held_out_count = 0

    def training_batches(self, batches):
        for texts in batches:
            mask = held_out_mask(np.arange(self.documents, self.documents + len(texts)), self.fraction, self.seed)
            self.documents += len(texts)
            self.held_out_count += int(mask.sum())
            for t, m in zip(texts, mask):
                if m and len(self.held_out) < self.max_held_out:
                    self.held_out.append(t)
            train = [t for t, m in zip(texts, mask) if not m]
            if train:
                yield train


def containment_groups(texts: list[str]) -> np.ndarray:
    """Group texts cut from one another: each text joins the longest text that contains it word for word.

    GLUE SST-2's training set is 67k phrases cut from about 7k sentences; a held-out part drawn phrase by phrase
    shares its sentences with training. Held out by group instead (`hash_uniform(groups, seed)`), a sentence
    leaves with every phrase cut from it. A text contained in several longer ones (a common short phrase) joins
    the longest, first in input order; the others may still contain it, as any other split's text may.

    Returns:
        int64 array (N,): the index of each text's group root (the root's own index for a root).

    Example:
        >>> containment_groups(["a good film", "good", "bad", "a good"]).tolist()
        [0, 0, 2, 0]
    """
    words = [t.split() for t in texts]
    order = sorted(range(len(texts)), key=lambda i: -len(words[i]))  # stable: ties keep input order
    owner: dict[str, int] = {}  # every contiguous word span of a root -> that root
    groups = np.empty(len(texts), dtype=np.int64)
    for i in order:
        key = " ".join(words[i])
        root = owner.get(key)
        if root is not None:
            groups[i] = root
            continue
        groups[i] = i
        w = words[i]
        for a in range(len(w)):  # O(L^2) spans per root; SST-2: 1.7M spans, about 2 s
            span = w[a]
            owner.setdefault(span, i)
            for b in range(a + 1, len(w)):
                span = f"{span} {w[b]}"
                owner.setdefault(span, i)
    return groups


def shared_text_groups(*columns: list[str]) -> np.ndarray:
    """Group examples that share a text in any text column (an RTE premise with two hypotheses, an STS-B
    sentence scored against several others): connected components over the texts, by union-find.

    Returns:
        int64 array (N,): the smallest example index of each example's group.

    Example:
        >>> shared_text_groups(["p1", "p2", "p3"], ["h1", "h2", "p1"]).tolist()
        [0, 1, 0]
    """
    n = len(columns[0])
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for col in columns:
        for i, text in enumerate(col):
            j = first.setdefault(text.strip(), i)
            a, b = find(i), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return np.asarray([find(i) for i in range(n)], dtype=np.int64)
