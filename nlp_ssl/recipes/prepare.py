"""`nlp-ssl prepare CONFIG`: tokenize a corpus, pack it into blocks, split off validation, cache on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nlp_ssl.data.caching import read_cached_key
from nlp_ssl.data.prepare import REPORT_FILE, PrepareConfig, cache_key, check_output, format_report
from nlp_ssl.data.sources import describe_source, iter_text_batches, load_source
from nlp_ssl.errors import ConfigError, DataError
from nlp_ssl.runinfo import atomic_dir, write_run_info

__all__ = ["PrepareConfig", "cache_key", "main"]


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
