"""Packing tokenized documents into fixed-length blocks, carrying the remainder across batches.

The Hugging Face `run_mlm.py` recipe (`group_texts` inside `Dataset.map`) packs each 1000-document batch on
its own and drops every batch's tail, so it silently loses up to `block_size - 1` tokens per batch. Here one
packer sees the whole stream: a batch's tail waits in a buffer for the next batch, and only the very last
partial block of the corpus is dropped (and counted). The work is numpy over flat token arrays, not Python
lists, because this is the step `datasets.map` makes slow.

Layout of a block of `block_size` tokens: an optional prefix token (`[CLS]` / `<s>`) and then
`block_size - 1` (or `block_size`) tokens of the stream, where the stream is every document's tokens followed
by a separator (`[SEP]` / `</s>`). A block may start or end mid-document, as in RoBERTa's FULL-SENTENCES.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PackStats:
    documents: int = 0
    tokens: int = 0  # document tokens plus separators, i.e. the stream length
    blocks: int = 0
    dropped_tokens: int = 0  # the final partial block, counted once the stream is finished


@dataclass
class BlockPacker:
    """Turn batches of token-id arrays into (n, block_size) int32 blocks.

    Example:
        >>> p = BlockPacker(block_size=4, sep_id=9, prefix_id=8)
        >>> p.add([np.array([1, 2]), np.array([3, 4, 5])])   # stream 1 2 9 3 4 5 9 -> two blocks of 3
        array([[8, 1, 2, 9],
               [8, 3, 4, 5]], dtype=int32)
        >>> p.finish(), p.stats.dropped_tokens                 # the lone trailing separator is dropped
        (None, 1)
    """

    block_size: int
    sep_id: int
    prefix_id: int | None = None
    stats: PackStats = field(default_factory=PackStats)
    _buffer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    _ws_buffer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))

    def __post_init__(self) -> None:
        self.content = self.block_size - (1 if self.prefix_id is not None else 0)
        if self.content < 1:
            raise ValueError(f"block_size {self.block_size} leaves no room for text")

    def add_flat(self, flat: np.ndarray, lengths: np.ndarray, word_start: np.ndarray | None = None):
        """Add documents given as one flat id array and per-document lengths (what workers send back).

        With `word_start` (a flag per token of `flat`), returns (id blocks, word-start blocks); separators and
        the prefix count as word starts. Otherwise returns id blocks. None while no block is complete.
        """
        n_docs = len(lengths)
        if n_docs == 0:
            return None
        # Insert one separator after each document: positions are the cumulative ends.
        ends = np.cumsum(lengths)
        stream = np.insert(flat.astype(np.int32, copy=False), ends, self.sep_id)  # (sum(lengths) + n_docs,)
        self.stats.documents += n_docs
        self.stats.tokens += len(stream)
        if word_start is None:
            return self._emit(stream, None)
        return self._emit(stream, np.insert(word_start.astype(np.int8, copy=False), ends, 1))

    def add(self, docs: list[np.ndarray]) -> np.ndarray | None:
        """Add a batch of documents (each a 1-D id array without special tokens); return the full blocks."""
        if not docs:
            return None
        lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
        return self.add_flat(np.concatenate(docs), lengths)

    def _cut(self, buffer: np.ndarray, stream: np.ndarray, n_blocks: int, prefix: int | None):
        buf = np.concatenate([buffer, stream]) if len(buffer) else stream
        rest = buf[n_blocks * self.content:].copy()
        body = buf[: n_blocks * self.content].reshape(n_blocks, self.content)  # (n, content)
        if prefix is not None:
            body = np.concatenate([np.full((n_blocks, 1), prefix, dtype=body.dtype), body], axis=1)
        return np.ascontiguousarray(body), rest  # (n, block_size), leftover

    def _emit(self, stream: np.ndarray, word_start: np.ndarray | None):
        n_blocks = (len(self._buffer) + len(stream)) // self.content
        ids, self._buffer = self._cut(self._buffer, stream, n_blocks, self.prefix_id)
        if word_start is not None:
            ws, self._ws_buffer = self._cut(self._ws_buffer, word_start, n_blocks, None if self.prefix_id is None else 1)
        if n_blocks == 0:
            return None
        self.stats.blocks += n_blocks
        return ids if word_start is None else (ids, ws)

    def finish(self) -> None:
        """End of stream: the tokens left (fewer than one block) are dropped and counted."""
        self.stats.dropped_tokens += len(self._buffer)
        self._buffer = self._buffer[:0]
        self._ws_buffer = self._ws_buffer[:0]


@dataclass
class DocumentPacker:
    """Blocks that never cross a document boundary (`prepare` with `layout: documents`), for objectives that
    need whole-document segments, such as sentence-order prediction.

    Layout of a block of `block_size` tokens: `[CLS] piece [SEP] [PAD] ...`, where a piece is up to
    `block_size - 3` consecutive tokens of one document (a document longer than that is cut into several pieces,
    in order; its last piece is shorter). Three slots are reserved: the prefix, the closing separator, and one
    more separator so that a piece split into two segments (`[CLS] A [SEP] B [SEP]`) still fits. Each block
    also records its `length` (real tokens, prefix and separator included): collators build the attention mask
    from it. Nothing is dropped (`dropped_tokens` stays 0); padding is the price, on the last piece of each
    document.

    Example:
        >>> p = DocumentPacker(block_size=6, sep_id=9, prefix_id=8, pad_id=0)
        >>> out = p.add_flat(np.array([1, 2, 3, 4, 5]), np.array([4, 1]))   # documents [1 2 3 4] and [5]
        >>> out["input_ids"].tolist(), out["length"].tolist()
        ([[8, 1, 2, 3, 9, 0], [8, 4, 9, 0, 0, 0], [8, 5, 9, 0, 0, 0]], [5, 3, 3])
    """

    block_size: int
    sep_id: int
    prefix_id: int
    pad_id: int
    stats: PackStats = field(default_factory=PackStats)

    def __post_init__(self) -> None:
        self.content = self.block_size - 3
        if self.content < 2:
            raise ValueError(f"block_size {self.block_size} is too small for document blocks (at least 5)")

    def add_flat(self, flat: np.ndarray, lengths: np.ndarray, word_start: np.ndarray | None = None):
        """Blocks of a batch of documents -> {"input_ids": (n, block_size), "length": (n,)[, "word_start"]}."""
        lengths = np.asarray(lengths, dtype=np.int64)
        self.stats.documents += len(lengths)
        self.stats.tokens += int(lengths.sum()) + len(lengths)  # as in the stream layout: tokens + one separator each
        starts = np.cumsum(lengths) - lengths
        # (start in flat, token count) of every piece, documents in order
        pieces = [(s + o, min(self.content, n - o)) for s, n in zip(starts.tolist(), lengths.tolist())
                  for o in range(0, n, self.content)]
        if not pieces:
            return None
        n = len(pieces)
        ids = np.full((n, self.block_size), self.pad_id, dtype=np.int32)
        ids[:, 0] = self.prefix_id
        ws = np.zeros((n, self.block_size), dtype=np.int8) if word_start is not None else None
        length = np.empty(n, dtype=np.int32)
        for r, (s, m) in enumerate(pieces):
            ids[r, 1:1 + m] = flat[s:s + m]
            ids[r, 1 + m] = self.sep_id
            length[r] = m + 2
            if ws is not None:
                ws[r, 0] = ws[r, 1 + m] = 1
                ws[r, 1:1 + m] = word_start[s:s + m]
                ws[r, 1] = 1  # a piece starts a word for masking purposes
        self.stats.blocks += n
        out = {"input_ids": ids, "length": length}
        if ws is not None:
            out["word_start"] = ws
        return out

    def finish(self) -> None:
        """Nothing is buffered: every block is complete when its batch is added."""
