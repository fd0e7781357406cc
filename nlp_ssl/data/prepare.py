"""Corpus preparation: text -> token ids -> packed fixed-length blocks -> `datasets` on disk (memory-mapped).

One pass over the source, in order, with bounded memory (one batch of text and one partial block in flight):

    text batch --tokenize (Rust, all cores; or a process pool)--> ids --BlockPacker--> blocks --> Arrow file

Documents are split into train/validation by a hash of their index (`split.held_out_mask`), so the split does
not depend on the number of processes and a document never straddles the two. Blocks are written with
`datasets.arrow_writer.ArrowWriter` as they come and finally saved as a `DatasetDict` that
`datasets.load_from_disk(dir)` memory-maps.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from nlp_ssl.data.packing import BlockPacker, PackStats
from nlp_ssl.data.split import held_out_mask

_WORKER_TOKENIZER = None


def _encode(backend, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of `texts` (no special tokens) as one flat int32 array and per-text lengths."""
    encs = backend.encode_batch_fast(texts, add_special_tokens=False) if hasattr(backend, "encode_batch_fast") \
        else backend.encode_batch(texts, add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
    flat = np.fromiter((i for e in encs for i in e.ids), dtype=np.int32, count=int(lengths.sum()))
    return flat, lengths


def _worker_init(tokenizer_json: str) -> None:
    global _WORKER_TOKENIZER
    from tokenizers import Tokenizer

    _WORKER_TOKENIZER = Tokenizer.from_str(tokenizer_json)


def _worker_encode(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return _encode(_WORKER_TOKENIZER, texts)


def encode_stream(tokenizer, batches: Iterable[list[str]], num_proc: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Tokenize text batches in order; with num_proc > 1 in a process pool (same output, same order)."""
    backend = tokenizer.backend_tokenizer
    if num_proc <= 1:
        for texts in batches:
            yield _encode(backend, texts)
        return
    # Workers run one Rust thread each, so num_proc processes use num_proc cores.
    ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    with ctx.Pool(num_proc, initializer=_worker_init, initargs=(backend.to_str(),)) as pool:
        yield from pool.imap(_worker_encode, batches, chunksize=1)


def document_separators(tokenizer) -> tuple[int, int | None]:
    """(separator id between documents, prefix id at the start of each block) for this tokenizer."""
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    prefix = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    if sep is None:
        from nlp_ssl.errors import TokenizerError

        raise TokenizerError("the tokenizer has neither a sep nor an eos token to separate documents; "
                             "add one (tokenizer.sep_token) before preparing a corpus")
    return sep, prefix


class _SplitWriter:
    """Packs one split and appends its blocks to an Arrow file as they come."""

    def __init__(self, path: Path, block_size: int, sep_id: int, prefix_id: int | None):
        import datasets
        from datasets.arrow_writer import ArrowWriter

        self.path = path
        self.features = datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32"), length=block_size)})
        self.writer = ArrowWriter(features=self.features, path=str(path))
        self.packer = BlockPacker(block_size=block_size, sep_id=sep_id, prefix_id=prefix_id)

    def add(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        import pyarrow as pa

        blocks = self.packer.add_flat(flat, lengths)
        if blocks is not None:  # (n, block_size) int32 -> one Arrow fixed-size-list column, no Python lists
            column = pa.FixedSizeListArray.from_arrays(pa.array(blocks.reshape(-1)), blocks.shape[1])
            self.writer.write_table(pa.table({"input_ids": column}))

    def close(self) -> PackStats:
        self.packer.finish()
        self.writer.finalize()
        self.writer.close()
        return self.packer.stats


def _split_docs(flat: np.ndarray, lengths: np.ndarray, mask: np.ndarray):
    """Partition a flat batch into (flat, lengths) of the documents where mask is False and where it is True."""
    if not mask.any():
        return (flat, lengths), None
    tok_mask = np.repeat(mask, lengths)  # (total tokens,): each document's flag repeated over its tokens
    return (flat[~tok_mask], lengths[~mask]), (flat[tok_mask], lengths[mask])


def prepare_corpus(
    texts: Iterable[list[str]],
    tokenizer,
    out_dir: Path,
    block_size: int,
    validation_fraction: float,
    seed: int,
    num_proc: int = 1,
    total_documents: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Tokenize, pack and save. Returns the report (documents, tokens, blocks, dropped tokens per split).

    Args:
        texts: batches of document strings, in source order.
        tokenizer: a fast tokenizer (its Rust backend does the work).
        out_dir: an empty directory to write the `DatasetDict` into.
        block_size: tokens per block, prefix token included.
        validation_fraction: share of documents held out for validation (0 for none).
        seed: seed of the held-out selection.
        num_proc: tokenizing processes (1: in-process, the Rust tokenizer already uses every core).
        total_documents: for the progress bar, when known.
    """
    import datasets
    from tqdm.auto import tqdm

    sep_id, prefix_id = document_separators(tokenizer)
    work = out_dir / "_blocks"
    work.mkdir(parents=True, exist_ok=True)
    writers = {"train": _SplitWriter(work / "train.arrow", block_size, sep_id, prefix_id)}
    if validation_fraction > 0:
        writers["validation"] = _SplitWriter(work / "validation.arrow", block_size, sep_id, prefix_id)
    bar = tqdm(total=total_documents, unit="doc", desc="prepare", disable=not progress, mininterval=1.0)
    doc_index = 0
    for flat, lengths in encode_stream(tokenizer, texts, num_proc):
        mask = held_out_mask(np.arange(doc_index, doc_index + len(lengths)), validation_fraction, seed)
        doc_index += len(lengths)
        train_part, val_part = _split_docs(flat, lengths, mask)
        writers["train"].add(*train_part)
        if val_part is not None:
            writers["validation"].add(*val_part)
        bar.update(len(lengths))
    bar.close()
    stats = {name: w.close() for name, w in writers.items()}
    splits = {name: datasets.Dataset.from_file(str(w.path)) for name, w in writers.items()}
    datasets.DatasetDict(splits).save_to_disk(str(out_dir))
    del splits
    for w in writers.values():
        w.path.unlink()
    work.rmdir()
    report = {name: vars(s) for name, s in stats.items()}
    report["total"] = {k: sum(vars(s)[k] for s in stats.values()) for k in vars(PackStats())}
    report["block_size"] = block_size
    return report
