"""`nlp-ssl evaluate MODEL_DIR [key=value ...]` (or a YAML config): score a fine-tuned model on evaluation
splits with the task's metrics, and optionally write metrics.json and per-example predictions.

By default the task is the one the model was fine-tuned with (read from MODEL_DIR/config.yaml), and the class
names come from the model's own config; `task.*` overrides point it at other data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from nlp_ssl.config import deep_merge, read_yaml
from nlp_ssl.errors import ConfigError
from nlp_ssl.layout import CONFIG_FILE


@dataclass
class EvaluateConfig:
    """Config of `nlp-ssl evaluate`.

    Attributes:
        model: a model directory written by `nlp-ssl finetune` (or any sequence-classification or QA model with
            its tokenizer); with `task.type=sts_zero_shot`, any encoder (see `nlp_ssl.tasks.sts`). Its task
            (`tasks.registry`) scores it.
        task: the task to score on; null: the model's own (MODEL_DIR/config.yaml). Keys given here override it.
        splits: which evaluation splits (null: all of the task's).
        per_device_eval_batch_size: examples per prediction batch.
        output_dir: where to write metrics.json and predictions-<split>.jsonl (null: print only).
        max_eval_samples: score only the first N examples (QA: questions) of each split; null: as the model's
            own run did (the `max_eval_samples` of MODEL_DIR/config.yaml, so its score is reproduced; all when it
            set none); -1: all.
    """

    model: str
    task: dict[str, Any] | None = None
    splits: list[str] | None = None
    per_device_eval_batch_size: int = 256
    output_dir: str | None = None
    max_eval_samples: int | None = None

    # old spellings, refused with the new name
    RENAMED: ClassVar[dict[str, str]] = {"batch_size": "per_device_eval_batch_size"}

    def validate(self) -> list[str]:
        problems = []
        if self.per_device_eval_batch_size < 1:
            problems.append("per_device_eval_batch_size: must be at least 1")
        if self.max_eval_samples is not None and (self.max_eval_samples == 0 or self.max_eval_samples < -1):
            problems.append(f"max_eval_samples: a positive number, -1 (all) or null (as the run did), got {self.max_eval_samples}")
        return problems


def eval_limit(cfg: EvaluateConfig) -> int | None:
    """How many examples of each split to score: the config's, else the model run's (None: all)."""
    n = cfg.max_eval_samples
    if n is None:
        saved = Path(cfg.model) / CONFIG_FILE
        n = read_yaml(saved).get("max_eval_samples") if saved.exists() else None
    return None if n is None or n == -1 else int(n)


def model_task(model_dir: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The task section a model was fine-tuned with, updated with `overrides`."""
    saved = Path(model_dir) / CONFIG_FILE
    base = read_yaml(saved).get("task", {}) if saved.exists() else {}
    if not base and not overrides:
        raise ConfigError([f"task: {model_dir} has no config.yaml from `nlp-ssl finetune`; give the task "
                           "(e.g. task.preset=sst2)"])
    overrides = overrides or {}
    if overrides.get("preset") not in (None, base.get("preset")):
        base = {"type": base["type"]} if "type" in base else {}  # another task: none of the saved task's keys apply
    return deep_merge(base, overrides)  # key by key: task.eval.dev.max_examples=20 keeps the path


def main(cfg: EvaluateConfig, data_dir: str | None = None) -> dict[str, Any]:
    """Score the model on its task's evaluation splits (or `cfg.splits`) and return the metrics."""
    from nlp_ssl.distributed import join_process_group
    from nlp_ssl.tasks.models import check_model_dir
    from nlp_ssl.tasks.registry import spec_for_model

    join_process_group()  # under `accelerate launch`, the ranks share the prediction (tasks.inference.predict)
    check_model_dir(cfg.model)
    if cfg.output_dir:  # before any work: a file in the way, no permission, a full disk, the model itself
        from nlp_ssl.atomic import check_output_target, refuse_input_overlap

        refuse_input_overlap(cfg.output_dir, {"model": cfg.model})
        # a folder of the user's is fine (metrics.json and predictions are added); another run's is not: its
        # metrics.json would be replaced (and a finished pretraining run's marker broken)
        check_output_target(cfg.output_dir, "evaluate", files_ok=True)
    task_dict = model_task(cfg.model, cfg.task)
    spec = spec_for_model(cfg.model, task_dict)  # the task's own scoring (its head, metrics, post-processing)
    return spec.evaluate_fn()(cfg.model, task_dict, cfg.splits, cfg.per_device_eval_batch_size, cfg.output_dir,
                              data_dir, eval_limit(cfg))
