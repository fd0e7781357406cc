"""Self-training (Yarowsky 1995; Xie et al. 2020 without noise): label an unlabelled pool with the current model,
keep its confident, class-balanced predictions, and retrain on labelled + pseudo-labelled examples; repeat.

Example:
    >>> pool = load_pool(cfg.self_training.unlabeled, tokenizer, task, data_dir)
    >>> extra, info = pseudo_label(model, pool, tokenizer, cfg.self_training, labels, batch_size=256, round_=1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nlp_ssl.data.sources import DataSourceConfig, column
from nlp_ssl.errors import DataError


@dataclass
class SelfTrainingConfig:
    """Self-training: label an unlabelled pool with the current model, keep confident class-balanced
    predictions, retrain on labelled + pseudo-labelled examples; repeat.

    Attributes:
        rounds: rounds after the supervised one (0: off).
        unlabeled: the pool's source (its `text_column` is read; `max_examples` bounds its size).
        threshold: minimum top-class probability for a pseudo-label.
        max_per_class: cap on pseudo-labels per class per round (null: no cap).
    """

    rounds: int = 0
    unlabeled: DataSourceConfig | None = None
    threshold: float = 0.9
    max_per_class: int | None = None

    def validate(self) -> list[str]:
        problems = []
        if self.rounds < 0:
            problems.append("rounds: must be 0 or more")
        if self.rounds and self.unlabeled is None:
            problems.append("unlabeled: self-training needs an unlabelled source")
        if not 0 < self.threshold < 1:
            problems.append(f"threshold: a probability in (0, 1), got {self.threshold}")
        return problems


def load_pool(src: DataSourceConfig, tokenizer, task, data_dir: str | None):
    """The unlabelled pool, encoded like the task's examples (label 0 is a placeholder, never trained on)."""
    from datasets import Dataset

    from nlp_ssl.data.sources import load_source
    from nlp_ssl.tasks.classification import encode

    raw = load_source(src, data_dir, [src.text_column])
    texts = [t for t in column(raw, src.text_column) if isinstance(t, str) and t.strip()]
    if not texts:
        raise DataError(f"self_training.unlabeled: column {src.text_column!r} holds no text")
    pool = Dataset.from_dict({"text_a": texts, "label": [0] * len(texts), "idx": list(range(len(texts)))})
    return encode(pool, tokenizer, task)


def pseudo_label(model, pool, tokenizer, cfg: SelfTrainingConfig, labels: list[str], batch_size: int,
                 round_: int) -> tuple[Any, dict[str, Any]]:
    """The pool examples the model labels confidently (class-balanced), as a training set, and a summary."""
    from nlp_ssl.tasks.inference import PadCollator, predict
    from nlp_ssl.tasks.classification import select_pseudo_labels, softmax

    out, _ = predict(model, pool, PadCollator(tokenizer), batch_size)
    chosen, pseudo = select_pseudo_labels(softmax(out["logits"]), cfg.threshold, cfg.max_per_class)
    selected = pool.select(chosen)
    selected = selected.remove_columns("labels").add_column("labels", [int(p) for p in pseudo])
    return selected, {"round": round_, "pseudo_labels": int(len(chosen)),
                      "per_class": {labels[c]: int((pseudo == c).sum()) for c in range(len(labels))}}
