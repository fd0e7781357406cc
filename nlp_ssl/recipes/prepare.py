"""`nlp-ssl prepare CONFIG`: tokenize a corpus, pack it into blocks, split off validation, cache on disk."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nlp_ssl.data.sources import DataSourceConfig, describe_source, iter_text_batches, load_source
from nlp_ssl.errors import ConfigError, DataError
from nlp_ssl.recipes.common import read_cached_key, source_fingerprint
from nlp_ssl.runinfo import atomic_dir, content_key, file_digest, write_run_info

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
        progress: show a progress bar.
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
                 if p.name not in ("run_info.json", "tokenizer_summary.json")}
    data = {k: v for k, v in vars(cfg.data).items() if k != "streaming"}  # overwrite: not part of the output
    return content_key({"format": FORMAT_VERSION, "data": data, "source": source_fingerprint(cfg.data, data_dir),
                        "tokenizer": tok_files, "block_size": cfg.block_size,
                        "validation_fraction": cfg.validation_fraction, "seed": cfg.seed,
                        "word_starts": cfg.word_starts,
                        "layout": None if cfg.layout == "stream" else cfg.layout})  # null: existing keys unchanged


def main(cfg: PrepareConfig, data_dir: str | None = None) -> dict[str, Any]:
    """Prepare the corpus, or reuse the cached result when nothing that changes it has changed."""
    from nlp_ssl.tokenization import check_tokenizer_dir

    check_output(cfg, data_dir)
    max_length = check_tokenizer_dir(cfg.tokenizer).get("model_max_length")
    if isinstance(max_length, int) and cfg.block_size > max_length:
        raise ConfigError([f"block_size: {cfg.block_size} is larger than the tokenizer allows "
                           f"(model_max_length {max_length} in {cfg.tokenizer}); "
                           f"use block_size <= {max_length} or retrain the tokenizer with a larger "
                           "tokenizer.model_max_length"])
    # The cache check reads only small files, so a second run answers before transformers is imported.
    key = cache_key(cfg, data_dir)
    out = Path(cfg.output_dir)
    if read_cached_key(out, REPORT_FILE) == key:
        report = json.loads((out / REPORT_FILE).read_text())
        print(f"{out} is up to date (cache key {key[:12]}); reusing it")
        print(format_report(report))
        return report
    if out.exists():
        print(f"{out} holds data prepared with another config or data; rebuilding it")

    from nlp_ssl.data.prepare import prepare_corpus
    from nlp_ssl.tokenization import load_tokenizer, tokenizer_fingerprint

    tokenizer = load_tokenizer(cfg.tokenizer)
    where = describe_source(cfg.data, data_dir)
    ds = load_source(cfg.data, data_dir, columns=[cfg.data.text_column])
    total = None if cfg.data.streaming else len(ds)
    print(f"preparing {where}: block size {cfg.block_size}, tokenizer {cfg.tokenizer}")
    with atomic_dir(out) as tmp:
        report = prepare_corpus(
            iter_text_batches(ds, cfg.data.text_column, cfg.batch_size, where=where), tokenizer, tmp,
            block_size=cfg.block_size, validation_fraction=cfg.validation_fraction, seed=cfg.seed,
            num_proc=cfg.num_proc or os.cpu_count() or 1, total_documents=total, progress=cfg.progress, word_starts=cfg.word_starts,
            layout=cfg.layout,
        )
        report = {"cache_key": key, "source": where, "tokenizer": str(cfg.tokenizer),
                  "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer), **report}
        if report["train"]["blocks"] == 0:
            raise DataError(f"{where}: {report['train']['tokens']} tokens make no full block of {cfg.block_size}; "
                            "use more text or a smaller block_size")
        write_run_info(tmp, cfg, "prepare")
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    print(format_report(report))
    if cfg.validation_fraction > 0 and report["validation"]["blocks"] == 0:
        print("warning: the validation split holds no full block; raise validation_fraction or use more text")
    print(f"saved to {out} (load with datasets.load_from_disk)")
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'split':<11}{'documents':>11}{'tokens':>14}{'blocks':>11}{'dropped tokens':>16}"]
    for name in ("train", "validation", "total"):
        if name in report:
            r = report[name]
            lines.append(f"{name:<11}{r['documents']:>11,}{r['tokens']:>14,}{r['blocks']:>11,}{r['dropped_tokens']:>16,}")
    return "\n".join(lines)
