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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np

from nlp_ssl.data.caching import source_fingerprint
from nlp_ssl.data.packing import BlockPacker, DocumentPacker, PackStats
from nlp_ssl.data.sources import DataSourceConfig
from nlp_ssl.data.split import held_out_mask
from nlp_ssl.errors import TokenizerError
from nlp_ssl.layout import RUN_INFO_FILE, TOKENIZER_SUMMARY_FILE
from nlp_ssl.runinfo import content_key, file_digest

_WORKER_TOKENIZER = None
_WORKER_WORD_STARTS = False


def _encode(backend, texts: list[str], word_starts: bool = False):
    """Token ids of `texts` (no special tokens) as one flat int32 array and per-text lengths.

    With `word_starts`, also a flat int8 array flagging the first token of each word, from the tokenizer's
    word ids (so it holds for WordPiece, BPE and Unigram alike).
    """
    if not word_starts:  # the fast path computes no offsets or word ids
        encs = backend.encode_batch_fast(texts, add_special_tokens=False)
    else:
        encs = backend.encode_batch(texts, add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
    total = int(lengths.sum())
    flat = np.fromiter((i for e in encs for i in e.ids), dtype=np.int32, count=total)
    if not word_starts:
        return flat, lengths, None
    words = np.fromiter((-1 if w is None else w for e in encs for w in e.word_ids), dtype=np.int64, count=total)
    starts = np.ones(total, dtype=np.int8)
    starts[1:] = words[1:] != words[:-1]
    starts[np.cumsum(lengths)[:-1]] = 1  # each document's first token starts a word
    return flat, lengths, starts


def _worker_init(tokenizer_json: str, word_starts: bool) -> None:
    global _WORKER_TOKENIZER, _WORKER_WORD_STARTS
    from tokenizers import Tokenizer

    _WORKER_TOKENIZER = Tokenizer.from_str(tokenizer_json)
    _WORKER_WORD_STARTS = word_starts


def _worker_encode(texts: list[str]):
    return _encode(_WORKER_TOKENIZER, texts, _WORKER_WORD_STARTS)


def encode_stream(tokenizer, batches: Iterable[list[str]], num_proc: int = 1, word_starts: bool = False):
    """Tokenize text batches in order; with num_proc > 1 in a process pool (same output, same order).

    Yields (flat ids, lengths, flat word-start flags or None) per batch.
    """
    backend = tokenizer.backend_tokenizer
    if num_proc <= 1:
        for texts in batches:
            yield _encode(backend, texts, word_starts)
        return
    # Workers run one Rust thread each, so num_proc processes use num_proc cores. The variable is set only
    # while the pool starts (the children inherit it), so this process keeps its own threads afterwards.
    ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
    before = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        pool = ctx.Pool(num_proc, initializer=_worker_init, initargs=(backend.to_str(), word_starts))
    finally:
        if before is None:
            os.environ.pop("TOKENIZERS_PARALLELISM")
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = before
    with pool:
        yield from pool.imap(_worker_encode, batches, chunksize=1)


def document_separators(tokenizer) -> tuple[int, int | None]:
    """(separator id between documents, prefix id at the start of each block) for this tokenizer."""
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    prefix = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    if sep is None:
        raise TokenizerError("the tokenizer has neither a sep nor an eos token to separate documents; "
                             "add one (tokenizer.sep_token) before preparing a corpus")
    return sep, prefix


class _SplitWriter:
    """Packs one split and appends its blocks to an Arrow file as they come."""

    def __init__(self, path: Path, block_size: int, sep_id: int, prefix_id: int | None, word_starts: bool,
                 layout: str = "stream", pad_id: int | None = None):
        import datasets
        from datasets.arrow_writer import ArrowWriter

        self.path = path
        self.word_starts = word_starts
        features = {"input_ids": datasets.Sequence(datasets.Value("int32"), length=block_size)}
        if word_starts:
            features["word_start"] = datasets.Sequence(datasets.Value("int8"), length=block_size)
        if layout == "documents":
            features["length"] = datasets.Value("int32")
            self.packer = DocumentPacker(block_size=block_size, sep_id=sep_id, prefix_id=prefix_id, pad_id=pad_id)
        else:
            self.packer = BlockPacker(block_size=block_size, sep_id=sep_id, prefix_id=prefix_id)
        self.writer = ArrowWriter(features=datasets.Features(features), path=str(path))

    def add(self, flat: np.ndarray, lengths: np.ndarray, word_start: np.ndarray | None) -> None:
        import pyarrow as pa

        out = self.packer.add_flat(flat, lengths, word_start)
        if out is None:
            return
        if isinstance(out, dict):  # document layout: its columns by name
            columns = out
        else:
            columns = {"input_ids": out[0], "word_start": out[1]} if self.word_starts else {"input_ids": out}
        # (n, block_size) arrays -> Arrow fixed-size-list columns, no Python lists on the way
        self.writer.write_table(pa.table({
            k: pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1]) if v.ndim == 2 else pa.array(v)
            for k, v in columns.items()}))

    def close(self) -> PackStats:
        self.packer.finish()
        self.writer.finalize()
        self.writer.close()
        return self.packer.stats


def _split_docs(flat: np.ndarray, lengths: np.ndarray, word_start: np.ndarray | None, mask: np.ndarray):
    """Partition a flat batch into the documents where mask is False and those where it is True."""
    if not mask.any():
        return (flat, lengths, word_start), None
    tok_mask = np.repeat(mask, lengths)  # (total tokens,): each document's flag repeated over its tokens
    ws = (None, None) if word_start is None else (word_start[~tok_mask], word_start[tok_mask])
    return (flat[~tok_mask], lengths[~mask], ws[0]), (flat[tok_mask], lengths[mask], ws[1])


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
    word_starts: bool = False,
    layout: str = "stream",
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
        word_starts: also store a `word_start` flag per token (for whole-word masking).
        layout: `stream` (documents run on across blocks, see `BlockPacker`) or `documents` (a block holds one
            document's tokens, padded, with a `length` column; see `DocumentPacker`).
    """
    import datasets

    from nlp_ssl.progress import progress_bar

    sep_id, prefix_id = document_separators(tokenizer)
    if layout == "documents" and (prefix_id is None or tokenizer.pad_token_id is None):
        raise TokenizerError("layout: documents needs a tokenizer with a cls (or bos) token and a pad token")
    work = out_dir / "_blocks"
    work.mkdir(parents=True, exist_ok=True)
    kw = dict(layout=layout, pad_id=tokenizer.pad_token_id)
    writers = {"train": _SplitWriter(work / "train.arrow", block_size, sep_id, prefix_id, word_starts, **kw)}
    if validation_fraction > 0:
        writers["validation"] = _SplitWriter(work / "validation.arrow", block_size, sep_id, prefix_id, word_starts, **kw)
    # a bar on a terminal; in a log, a line a minute
    bar = progress_bar(total=total_documents, desc="prepare", unit="doc", enabled=progress)
    doc_index = 0
    for flat, lengths, starts in encode_stream(tokenizer, texts, num_proc, word_starts):
        mask = held_out_mask(np.arange(doc_index, doc_index + len(lengths)), validation_fraction, seed)
        doc_index += len(lengths)
        train_part, val_part = _split_docs(flat, lengths, starts, mask)
        writers["train"].add(*train_part)
        if val_part is not None:
            writers["validation"].add(*val_part)
        bar.update(len(lengths))
    bar.close()
    stats = {name: w.close() for name, w in writers.items()}
    # A split without a full block is left out: `datasets` saves an empty split that `load_from_disk` cannot
    # read back (IndexError); the report still counts its documents and tokens.
    splits = {name: datasets.Dataset.from_file(str(w.path)) for name, w in writers.items()
              if name == "train" or stats[name].blocks > 0}
    datasets.DatasetDict(splits).save_to_disk(str(out_dir))
    del splits
    for w in writers.values():
        w.path.unlink()
    work.rmdir()
    report = {name: vars(s) for name, s in stats.items()}
    report["total"] = {k: sum(vars(s)[k] for s in stats.values()) for k in vars(PackStats())}
    report["block_size"] = block_size
    if layout != "stream":
        report["layout"] = layout
    return report


# ----------------------------------------------------------------------------------------------------------
# The `nlp-ssl prepare` config, its output checks, cache key and report


REPORT_FILE = "prepare_report.json"
FORMAT_VERSION = 1  # bump when the block layout changes, so old caches are rebuilt


@dataclass
class PrepareConfig:
    """Config of `nlp-ssl prepare`.

    Attributes:
        output_dir: where the packed `DatasetDict` goes (`datasets.load_from_disk(output_dir)`).
        tokenizer: directory of a saved fast tokenizer.
        data: the corpus.
        block_size: tokens per block (the pretraining sequence length), at most the tokenizer's model_max_length.
        validation_fraction: share of documents held out as the validation split (0: no validation split).
        seed: seed of the validation selection.
        num_proc: tokenizing processes (null: one per CPU core). 1 tokenizes in-process, where the Rust tokenizer
            also uses several threads but keeps the cores less busy. Does not change the output.
        batch_size: documents tokenized per batch. Does not change the output.
        word_starts: also store a per-token `word_start` flag (needed by whole-word masking).
        layout: `stream` (default: documents run on across blocks, every block full) or `documents` (a block
            never crosses a document boundary: `[CLS]` up to block_size - 3 tokens of one document `[SEP]`, then
            padding, plus a `length` column; needed by `objective.sentence_order`). See `data.packing`.
        progress: show progress (a bar on a terminal; otherwise a line a minute).
        overwrite: replace an output_dir that holds something other than a corpus prepared by `nlp-ssl prepare`.
    """

    output_dir: str
    tokenizer: str
    data: DataSourceConfig
    block_size: int = 128
    validation_fraction: float = 0.01
    seed: int = 0
    num_proc: int | None = None
    batch_size: int = 1000
    word_starts: bool = False
    layout: Literal["stream", "documents"] = "stream"
    progress: bool = True
    overwrite: bool = False

    def validate(self) -> list[str]:
        problems = []
        if self.block_size < 2:
            problems.append(f"block_size: must be at least 2, got {self.block_size}")
        if not 0 <= self.validation_fraction < 1:
            problems.append(f"validation_fraction: must be in [0, 1), got {self.validation_fraction}")
        if self.num_proc is not None and self.num_proc < 1:
            problems.append("num_proc: must be at least 1")
        if self.layout == "documents" and self.block_size < 5:
            problems.append(f"block_size: layout documents needs at least 5 (prefix, 2 tokens, 2 separators), got {self.block_size}")
        if self.batch_size < 1:
            problems.append("batch_size: must be at least 1")
        return problems


def check_output(cfg: PrepareConfig, data_dir: str | None) -> None:
    """Refuse an output_dir that is an input of this run or holds another command's output (before any work)."""
    from nlp_ssl.atomic import check_output_target, refuse_input_overlap

    refuse_input_overlap(cfg.output_dir, {"tokenizer": cfg.tokenizer, "data.path": cfg.data.path}, data_dir)
    check_output_target(cfg.output_dir, "prepare", cfg.overwrite)


def cache_key(cfg: PrepareConfig, data_dir: str | None) -> str:
    """Hash of everything that changes the output: data, tokenizer files, block layout, split; not speed settings."""
    tok_dir = Path(cfg.tokenizer)
    tok_files = {p.name: file_digest(p) for p in sorted(tok_dir.glob("*.json"))
                 if p.name not in (RUN_INFO_FILE, TOKENIZER_SUMMARY_FILE)}
    data = {k: v for k, v in vars(cfg.data).items() if k != "streaming"}  # overwrite: not part of the output
    return content_key({"format": FORMAT_VERSION, "data": data, "source": source_fingerprint(cfg.data, data_dir),
                        "tokenizer": tok_files, "block_size": cfg.block_size,
                        "validation_fraction": cfg.validation_fraction, "seed": cfg.seed,
                        "word_starts": cfg.word_starts,
                        "layout": None if cfg.layout == "stream" else cfg.layout})  # null: existing keys unchanged


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'split':<11}{'documents':>11}{'tokens':>14}{'blocks':>11}{'dropped tokens':>16}"]
    for name in ("train", "validation", "total"):
        if name in report:
            r = report[name]
            lines.append(f"{name:<11}{r['documents']:>11,}{r['tokens']:>14,}{r['blocks']:>11,}{r['dropped_tokens']:>16,}")
    return "\n".join(lines)
