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
