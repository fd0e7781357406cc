"""`nlp-ssl train-tokenizer CONFIG`: train a tokenizer on a text source and save it as a HF fast tokenizer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlp_ssl.atomic import check_output_target, refuse_input_overlap
from nlp_ssl.data.caching import is_nonempty_dir, read_cached_key, source_fingerprint
from nlp_ssl.data.sources import DataSourceConfig, describe_source, iter_text_batches, load_source
from nlp_ssl.data.split import HeldOutStream
from nlp_ssl.errors import OutputError
from nlp_ssl.layout import TOKENIZER_SUMMARY_FILE
from nlp_ssl.runinfo import atomic_dir, content_key, write_run_info
from nlp_ssl.tokenization import TokenizerConfig

SUMMARY_FILE = TOKENIZER_SUMMARY_FILE


@dataclass
class TrainTokenizerConfig:
    """Config of `nlp-ssl train-tokenizer`.

    Attributes:
        output_dir: where the tokenizer is saved (loads with `AutoTokenizer.from_pretrained`).
        data: the training text.
        tokenizer: model, vocabulary and special tokens.
        held_out_fraction: share of documents kept out of training to measure the tokenizer on.
        held_out_max_documents: at most this many held-out documents are measured.
        batch_size: documents per batch fed to the trainer.
        overwrite: replace an existing, different tokenizer in output_dir.
    """

    output_dir: str
    data: DataSourceConfig
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    held_out_fraction: float = 0.01
    held_out_max_documents: int = 1000
    batch_size: int = 1000
    overwrite: bool = False

    def validate(self) -> list[str]:
        problems = []
        if not 0 <= self.held_out_fraction < 1:
            problems.append(f"held_out_fraction: must be in [0, 1), got {self.held_out_fraction}")
        if self.batch_size < 1:
            problems.append("batch_size: must be at least 1")
        return problems


def main(cfg: TrainTokenizerConfig, data_dir: str | None = None) -> dict[str, Any]:
    """Train, summarise on held-out documents, and save atomically. Skips work if the same run is already there."""
    from nlp_ssl.hub import write_model_card
    from nlp_ssl.tokenization import summarize, train_tokenizer

    refuse_input_overlap(cfg.output_dir, {"data.path": cfg.data.path}, data_dir)
    key = content_key({"config": {k: v for k, v in vars(cfg).items() if k not in ("output_dir", "overwrite")},
                       "source": source_fingerprint(cfg.data, data_dir)})
    out = Path(cfg.output_dir)
    if read_cached_key(out, SUMMARY_FILE) == key:
        summary = json.loads((out / SUMMARY_FILE).read_text())
        print(f"tokenizer in {out} is up to date (same config and data); nothing to do")
        return summary
    check_output_target(out, "train-tokenizer", cfg.overwrite)
    if is_nonempty_dir(out) and not cfg.overwrite:
        raise OutputError(f"{out} already holds something else (a tokenizer from another config, or other files); "
                          "set overwrite=true to replace it, or choose another output_dir")

    where = describe_source(cfg.data, data_dir)
    ds = load_source(cfg.data, data_dir, columns=[cfg.data.text_column])
    split = HeldOutStream(cfg.held_out_fraction, cfg.held_out_max_documents)
    batches = split.training_batches(iter_text_batches(ds, cfg.data.text_column, cfg.batch_size, where=where))

    print(f"training a {cfg.tokenizer.model} tokenizer (vocab {cfg.tokenizer.vocab_size:,}) on {where}")
    total = None if cfg.data.streaming else len(ds)  # for the progress of `tokenizers` (shown on a terminal)
    tokenizer = train_tokenizer(cfg.tokenizer, batches, length=total)
    summary = summarize(tokenizer, split.held_out)
    print(summary.format())
    result = {"cache_key": key, "source": where, "documents": split.documents,
              "training_documents": split.documents - split.held_out_count, **vars(summary)}
    with atomic_dir(out) as tmp:
        tokenizer.save_pretrained(str(tmp))
        write_run_info(tmp, cfg, "train-tokenizer")
        (tmp / SUMMARY_FILE).write_text(json.dumps(result, indent=2) + "\n")
        write_model_card(tmp)
    print(f"saved to {out}")
    return result
