"""Pretraining components: the config of `nlp-ssl pretrain`, prepared-block loading and checks, the objective
(model + collator + fixed validation set, looked up in `nlp_ssl.objectives.registry`), TrainingArguments and the
Trainer built from the config, and the final metrics.

Example:
    >>> blocks, report = load_blocks("runs/prepared")
    >>> objective = setup_objective(cfg, tokenizer, blocks)       # objective.model, .collator, .eval_set
    >>> trainer = build_trainer(cfg, training_arguments(cfg), objective, tokenizer, blocks["train"])
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlp_ssl.errors import ConfigError, DataError, ModelError
from nlp_ssl.hub import HubConfig
from nlp_ssl.modeling import ModelConfig
from nlp_ssl.objectives.registry import ObjectiveConfig
from nlp_ssl.optimization import ImplConfig, TrainConfig


@dataclass
class PretrainConfig:
    """Config of `nlp-ssl pretrain`.

    Attributes:
        output_dir: the trained model (loads with `AutoModelForMaskedLM.from_pretrained`), checkpoints/ and tensorboard/.
        data: a directory written by `nlp-ssl prepare`.
        tokenizer: the tokenizer directory; null takes the one recorded by `prepare`.
        model, objective, train, impl, hub: see their classes.
        overwrite: start over in an output_dir that holds another run (see also train.resume).
    """

    output_dir: str
    data: str
    tokenizer: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    impl: ImplConfig = field(default_factory=ImplConfig)
    overwrite: bool = False
    hub: HubConfig = field(default_factory=HubConfig)

    def validate(self) -> list[str]:
        problems = []
        if self.train.resume and self.overwrite:
            problems.append("overwrite and train.resume: choose one")
        if self.objective.task == "clm" and self.model.arch == "modernbert":
            problems.append("objective.task: clm needs a model with a causal-LM head; use model.arch bert or roberta")
        if self.objective.task == "clm" and self.model.sparse_prediction:
            problems.append("model.sparse_prediction: only for objective.task mlm; set it to false for clm")
        return problems


# ----------------------------------------------------------------------------------------------------------
# Data


def load_blocks(path: str):
    """The prepared DatasetDict and its report, with a clear error when `path` is not one."""
    import datasets

    p = Path(path)
    if not (p / "dataset_dict.json").exists():
        raise DataError(f"{p} holds no prepared corpus; run `nlp-ssl prepare CONFIG` first (or fix `data:`)")
    report_path = p / "prepare_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return datasets.load_from_disk(str(p)), report


def tokenizer_path(cfg: PretrainConfig, report: dict) -> str:
    """The tokenizer: the config's, else the one `prepare` recorded."""
    path = cfg.tokenizer or report.get("tokenizer")
    if not path:
        raise ConfigError(["tokenizer: not given and the prepared data does not record one; set tokenizer: DIR"])
    return path


def check_ids_fit(blocks, vocab_size: int, where: str) -> None:
    """Token ids in the data must exist in the model's vocabulary (catches a data/tokenizer mix-up)."""
    import numpy as np

    sample = np.asarray(blocks.select(range(min(1000, len(blocks)))).with_format("numpy")["input_ids"])
    if sample.size and sample.max() >= vocab_size:
        raise ModelError(f"data: {where} holds token id {int(sample.max())} but the model's vocabulary has "
                         f"{vocab_size} entries; the corpus was prepared with another tokenizer")


def setup_objective(cfg: PretrainConfig, tokenizer, blocks):
    """The objective's model, collator and fixed validation set (`objectives.registry.build_objective`), checked
    against the prepared blocks; the model is initialised from `train.seed`."""
    import torch

    from nlp_ssl.objectives.registry import build_objective

    torch.manual_seed(cfg.train.seed)
    objective = build_objective(cfg.objective, cfg.model, tokenizer, blocks, seed=cfg.train.seed,
                                eval_blocks=cfg.train.max_eval_samples)
    check_ids_fit(blocks["train"], objective.config.vocab_size, cfg.data)
    if objective.eval_set is None and cfg.train.eval_steps:
        raise DataError(f"{cfg.data} has no validation blocks; prepare with validation_fraction > 0 or set train.eval_steps=0")
    return objective


# ----------------------------------------------------------------------------------------------------------
# Trainer


def training_arguments(cfg: PretrainConfig, block_size: int | None = None):
    """TrainingArguments from the config (`optimization.training_arguments`; checkpoints in output_dir/checkpoints).
    A token budget (`train.max_tokens`) needs the prepared blocks' `block_size` to become a number of steps."""
    from nlp_ssl.optimization import training_arguments as build

    t = cfg.train
    args = build(Path(cfg.output_dir) / "checkpoints", t, cfg.impl, seed=t.seed)
    if t.max_tokens is not None:  # the world size is known only now (TrainingArguments reads the launcher's)
        if block_size is None:
            raise ValueError("training_arguments: train.max_tokens needs the block size")
        tokens_per_step = t.per_device_train_batch_size * args.world_size * t.gradient_accumulation_steps * block_size
        args.max_steps = t.trainer_length(tokens_per_step)[0]
    return args


def global_batch_size(cfg: PretrainConfig, args, train_blocks) -> int:
    """Blocks per optimizer step over all devices; the training blocks must fill at least one."""
    world = args.world_size
    batch = cfg.train.per_device_train_batch_size * world * cfg.train.gradient_accumulation_steps
    if len(train_blocks) < batch:
        raise DataError(f"{cfg.data}: {len(train_blocks)} training blocks are fewer than one global batch "
                        f"({cfg.train.per_device_train_batch_size} x {world} devices x {cfg.train.gradient_accumulation_steps} "
                        "accumulation); use more text or a smaller train.per_device_train_batch_size")
    return batch


def build_trainer(cfg: PretrainConfig, args, objective, tokenizer, train_blocks):
    """The Trainer with throughput logging, per-epoch masks, TensorBoard events in output_dir/tensorboard,
    (under max_time_minutes) the time budget whose schedule ends at the deadline (a resumed run continues from
    the time its checkpoint recorded: the trainer restores it), and progress in the run's own unit (elapsed /
    budget, or steps; `progress.use_run_progress`) instead of the Trainer's step bar."""
    from nlp_ssl.distributed import configure_sharding
    from nlp_ssl.training import PackedBlocks, make_trainer_class, set_tensorboard_dir, trainer_callbacks

    from nlp_ssl.progress import use_run_progress

    block_size = len(train_blocks[0]["input_ids"])
    tokens_per_step = global_batch_size(cfg, args, train_blocks) * block_size
    TimeBudget, Throughput, CollatorEpoch = trainer_callbacks()
    callbacks = [Throughput(tokens_per_step), CollatorEpoch(objective.collator)]
    budget = None
    if cfg.train.max_time_minutes:
        budget = TimeBudget(cfg.train.max_time_minutes * 60)
        callbacks.append(budget)
    if args.activation_checkpointing and not hasattr(objective.model, "activation_checkpointing_enable"):
        raise ConfigError([f"impl.gradient_checkpointing: the {cfg.objective.task} objective trains "
                           f"{type(objective.model).__name__}, a wrapper of several models that the Trainer cannot "
                           "checkpoint; set impl.gradient_checkpointing=false"])
    Trainer = make_trainer_class()
    trainer = Trainer(model=objective.model, args=args, data_collator=objective.collator,
                   train_dataset=PackedBlocks(train_blocks, objective.columns), eval_dataset=objective.eval_set,
                   processing_class=tokenizer, callbacks=callbacks, time_budget=budget,
                   warmup_ratio=cfg.train.warmup_ratio, schedule=cfg.train.lr_scheduler_type, **objective.metric_kwargs)
    set_tensorboard_dir(trainer, str(Path(cfg.output_dir) / "tensorboard"))
    use_run_progress(trainer, budget, tokens_per_step)  # a budget's bar is its seconds, not the 10**9 steps
    configure_sharding(trainer)  # FSDP: wrap the model's own block class (BertLayer, RobertaLayer, ...)
    return trainer


# ----------------------------------------------------------------------------------------------------------
# Validate and save


def final_metrics(cfg: PretrainConfig, trainer, train_seconds: float, tokens_per_step: int,
                  validate: bool) -> dict[str, Any]:
    """Training summary, plus the evaluation on the fixed validation set (and, for a language-modelling loss, its
    perplexity) when `validate`."""
    from nlp_ssl.training import summarize_log_history

    metrics: dict[str, Any] = {"train_runtime_s": train_seconds, "steps": trainer.state.global_step,
                               "train_loss_mean": trainer.train_loss_mean(), "world_size": trainer.args.world_size,
                               "tokens_seen": trainer.state.global_step * tokens_per_step}
    if validate:
        ev = trainer.evaluate()
        metrics.update(ev)
        if cfg.objective.task in ("mlm", "clm") and not cfg.objective.sentence_order:  # eval_loss is the LM's
            metrics["eval_perplexity"] = math.exp(min(ev["eval_loss"], 50))
    metrics.update({k: v for k, v in summarize_log_history(trainer.state.log_history).items() if k not in metrics})
    metrics.pop("eval_model_preparation_time", None)  # only there when the model was loaded from a checkpoint
    return metrics
