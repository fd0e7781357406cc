"""One optimisation config and one `TrainingArguments` builder for `nlp-ssl pretrain` and `nlp-ssl finetune`.

- `OptimizationConfig`: the keys both commands' `train:` sections share, under the Hugging Face
  `TrainingArguments` names; `TrainConfig` (pretraining: run length in time, steps, tokens or passes; the seed)
  and `FinetuneTrainConfig` (fine-tuning: a learning-rate grid, dropout, layer-wise rates, selection during
  training) add their own.
- `ImplConfig`: the `impl:` section of both commands, settings chosen for speed and memory, not for results.
- `training_arguments`: the one `TrainingArguments` builder of both (the warm-up and scheduler mappings live
  here only); `check_trainer_options` refuses, before any data is loaded, what the Trainer would refuse later.
- Layer-wise learning rates (`train.layer_lr_decay`) as the optimizer's parameter groups.

Only the standard library is imported at module level, so config errors answer at once; torch and transformers
are imported where they are used.

Example:
    >>> train = FinetuneTrainConfig(learning_rate=3e-4, lr_scheduler_type="constant")
    >>> args = training_arguments("runs/x/checkpoints", train, ImplConfig(), seed=1)  # doctest: +SKIP
    >>> args.lr_scheduler_type.value, args.warmup_steps                                # doctest: +SKIP
    ('constant_with_warmup', 0.1)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from nlp_ssl.errors import ConfigError

# The Trainer's `constant` schedule has no warm-up; ours warms up as the others do (warmup_ratio), then stays.
SCHEDULERS: dict[str, str] = {"constant": "constant_with_warmup"}


@dataclass
class ImplConfig:
    """Settings chosen for speed and memory, not for results: the `impl` section of `pretrain` and `finetune` alike
    (cramming's `impl` section). They do not change what is computed, but the thread count and compilation change
    the order of floating-point sums, so the same seed gives weights that differ in the last bits, and a few-label
    run can amplify that into a different figure. They stay part of a run's identity: a finished run is reused,
    and an interrupted one resumed, only with the same `impl`.

    Attributes:
        torch_compile: compile the model with `torch.compile` (first steps slower; later ones faster on GPU).
        dataloader_num_workers: worker processes that load batches (0: in the training process).
        num_threads: CPU threads torch uses (null: torch's default, all cores).
        gradient_checkpointing: recompute activations in the backward pass: less memory, ~30% slower, the same
            run (the recomputation replays the same dropout masks). Not for pretraining objectives that train a
            wrapper of several models (ELECTRA, SimCSE, sentence order): refused there.
    """

    torch_compile: bool = False
    dataloader_num_workers: int = 0
    num_threads: int | None = None
    gradient_checkpointing: bool = False

    def validate(self) -> list[str]:
        problems = []
        if self.dataloader_num_workers < 0:
            problems.append(f"dataloader_num_workers: must be 0 or more, got {self.dataloader_num_workers}")
        if self.num_threads is not None and self.num_threads < 1:
            problems.append(f"num_threads: must be at least 1, or null (torch's default), got {self.num_threads}")
        return problems


def apply_impl(impl: ImplConfig) -> None:
    """Apply the process-wide settings of `impl` (torch's CPU threads); the others reach the Trainer through
    `training_arguments`."""
    if impl.num_threads:
        import torch

        torch.set_num_threads(impl.num_threads)


# ----------------------------------------------------------------------------------------------------------
# The `train:` section: what both commands share, then each command's own keys


# Speed-only keys that fine-tuning once kept in `train`: both commands keep them in `impl` now (`/`: a key
# outside the section, see `config.renamed_path`).
_MOVED_TO_IMPL = {name: f"/impl.{name}" for name in ("torch_compile", "dataloader_num_workers", "gradient_checkpointing")}


@dataclass
class OptimizationConfig:
    """Optimisation and run control shared by `pretrain` and `finetune` (their `train:` section), under the
    Hugging Face `TrainingArguments` names.

    Attributes:
        learning_rate: peak learning rate.
        per_device_train_batch_size: examples per device per micro-batch; the global batch is this x devices x
            gradient_accumulation_steps.
        per_device_eval_batch_size: examples per device per evaluation batch (null: twice the training batch).
        gradient_accumulation_steps: micro-batches per optimizer step.
        weight_decay: AdamW decoupled weight decay (not applied to norms and biases).
        adam_beta1, adam_beta2, adam_epsilon: AdamW settings.
        max_grad_norm: gradient clipping (0: none).
        warmup_ratio: share of the run spent warming up (the rate rises linearly from zero to its peak).
        lr_scheduler_type: decay after warm-up: `linear` or `cosine` to zero, or `constant`.
        max_steps: optimizer steps (-1: not set).
        num_train_epochs: passes over the training set.
        eval_steps: evaluate every N optimizer steps (0: only at the end).
        logging_steps: log every N steps.
        save_steps: write a checkpoint every N optimizer steps into output_dir/checkpoints (0: none during the
            run), each marked complete only once all of its files are written (see `nlp_ssl.checkpoints`).
        save_total_limit: checkpoints kept (the newest).
        resume: continue an interrupted run from its latest complete checkpoint in output_dir (same config).
        report_to: logging integrations (`tensorboard`, or `none` / empty).
        bf16: bfloat16 autocast (GPU; on this project's CPUs it is far slower than fp32).
        fp16: float16 autocast with loss scaling (a CUDA GPU only: refused on CPU, where the Trainer's fp16 is
            slow and unsupported by many kernels; use bf16 there).
        optim: the Trainer's optimizer name (`adamw_torch_fused`, `adamw_torch`, `adafactor`, `sgd`, ...). The
            default is the Trainer's own (transformers 5, torch >= 2.8), which every earlier figure used: the
            fused and unfused AdamW differ in the last bits, and a few-label run amplifies that, so with another
            optimizer a figure re-run at its seed is a different run.
        training_args: other `transformers.TrainingArguments` fields passed through as given (e.g.
            `{label_smoothing_factor: 0.1}`); an unknown field, or one nlp-ssl sets from its own key, is a
            config error naming the fix.
    """

    learning_rate: float = 1e-3
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    warmup_ratio: float = 0.1
    lr_scheduler_type: Literal["linear", "cosine", "constant"] = "linear"
    max_steps: int = -1
    num_train_epochs: float | None = None
    eval_steps: int = 0
    logging_steps: int = 50
    save_steps: int = 0
    save_total_limit: int = 2
    resume: bool = False
    report_to: list[str] = field(default_factory=list)
    bf16: bool = False
    fp16: bool = False
    optim: str = "adamw_torch_fused"
    training_args: dict[str, Any] = field(default_factory=dict)

    # old spellings, refused with the new name (and migrated when an older run's config.yaml is read)
    RENAMED: ClassVar[dict[str, str]] = {"per_device_batch_size": "per_device_train_batch_size",
                                         "num_epochs": "num_train_epochs", "lr_scheduler": "lr_scheduler_type",
                                         **_MOVED_TO_IMPL}
    # TrainingArguments fields the command sets from its own keys, beyond `PROJECT_ARGS` (see `project_args`)
    OWN_ARGS: ClassVar[dict[str, str]] = {}

    @property
    def learning_rate_grid(self) -> list[float]:
        """`learning_rate` as a list (one rate, or fine-tuning's grid)."""
        lr = self.learning_rate
        return [float(r) for r in lr] if isinstance(lr, (list, tuple)) else [float(lr)]

    @classmethod
    def project_args(cls) -> dict[str, str]:
        """TrainingArguments fields nlp-ssl sets itself (refused in `train.training_args`) -> the key to use."""
        return {**PROJECT_ARGS, **cls.OWN_ARGS}

    def trainer_length(self, tokens_per_step: int | None = None) -> tuple[int, float]:
        """(max_steps, num_train_epochs) for `TrainingArguments`."""
        return self.max_steps, self.num_train_epochs if self.num_train_epochs is not None else 1.0

    def trainer_settings(self) -> dict[str, Any]:
        """TrainingArguments fields that this command sets its own way (evaluation, sampling, ...)."""
        return {}

    def validate(self) -> list[str]:
        problems = []
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.per_device_eval_batch_size is not None and self.per_device_eval_batch_size < 1:
            problems.append("per_device_eval_batch_size: must be at least 1, or null (twice the training batch)")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append("max_steps: must be positive, or -1 (not set)")
        if self.num_train_epochs is not None and self.num_train_epochs <= 0:
            problems.append(f"num_train_epochs: must be positive, got {self.num_train_epochs}")
        if self.fp16 and self.bf16:
            problems.append("fp16 and bf16: choose one (bf16 on CPUs and recent GPUs, fp16 on older GPUs)")
        problems += optimizer_range_problems(self)
        for name, what in (("save_steps", "only the final model"), ("eval_steps", "only at the end")):
            if getattr(self, name) < 0:
                problems.append(f"{name}: must be 0 ({what}) or positive, got {getattr(self, name)}")
        if self.save_total_limit < 1:
            problems.append(f"save_total_limit: must be at least 1 (the checkpoint to resume from), got {self.save_total_limit}")
        return problems


def optimizer_range_problems(cfg: OptimizationConfig) -> list[str]:
    """Range checks of the AdamW settings (values that the optimizer would accept silently, or reject only after
    the data is loaded)."""
    problems = []
    for name in ("adam_beta1", "adam_beta2"):
        value = getattr(cfg, name)
        if not 0 <= value < 1:
            problems.append(f"{name}: must be in [0, 1), got {value}")
    if cfg.adam_epsilon <= 0:
        problems.append(f"adam_epsilon: must be positive, got {cfg.adam_epsilon}")
    if cfg.weight_decay < 0:
        problems.append(f"weight_decay: must be 0 or more, got {cfg.weight_decay}")
    if cfg.max_grad_norm < 0:
        problems.append(f"max_grad_norm: must be 0 (off) or positive, got {cfg.max_grad_norm}")
    return problems


@dataclass
class TrainConfig(OptimizationConfig):
    """Optimisation and run control of `nlp-ssl pretrain` (what changes results): the keys of
    `OptimizationConfig`, with the run's length in one unit, and its seed.

    Attributes:
        per_device_train_batch_size: blocks per device per micro-batch; the global batch is this x devices x
            gradient_accumulation_steps.
        per_device_eval_batch_size: blocks per device per evaluation batch (null: twice the training batch).
        warmup_ratio: share of the run (steps, or time under max_time_minutes) spent warming up.
        max_time_minutes, max_steps, max_tokens, num_train_epochs: how long the run is, in one unit; set at most
            one of them (setting two is a config error that names both):
            - max_time_minutes: a wall-clock budget (null: not set). The schedule is a function of elapsed
              training time (the rate of each step is computed from the time at its start, on the slowest rank),
              training stops at the deadline and the schedule reaches its end exactly then; the data is repeated
              as often as the time allows. A resumed run continues from the time its checkpoint recorded. What
              the run learns depends on the machine's speed and load: for users, not for figures meant to be
              reproduced.
            - max_steps: optimizer steps (-1: not set); the schedule runs over these steps.
            - max_tokens: tokens seen (block tokens, padding included), over all devices (null: not set); the
              run takes ceil(max_tokens / (global batch x block size)) optimizer steps, so the same budget gives
              the same steps whatever the machine's speed, and the same tokens whatever the number of devices.
              For figures meant to be reproduced.
            - num_train_epochs: passes over the training blocks (null: not set); with none set, one pass.
        eval_steps: evaluate on the fixed validation blocks every N steps (0: only at the end).
        max_eval_samples: validation blocks used for evaluation, the first N (masked once, the same every time).
        save_steps: checkpoint every N steps into output_dir/checkpoints (0: only the final model).
        resume: continue from the last complete checkpoint in output_dir (see also overwrite).
        report_to: logging integrations (`tensorboard`, or `none`).
        seed: seed of initialisation, data order and masks.
    """

    per_device_train_batch_size: int = 64
    adam_beta2: float = 0.98
    adam_epsilon: float = 1e-6
    warmup_ratio: float = 0.06
    max_time_minutes: float | None = None
    max_tokens: int | None = None
    eval_steps: int = 500
    max_eval_samples: int = 1000
    save_steps: int = 500
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    seed: int = 0

    RENAMED: ClassVar[dict[str, str]] = {**OptimizationConfig.RENAMED, "overwrite": "/overwrite",
                                         "eval_blocks": "max_eval_samples"}
    OWN_ARGS: ClassVar[dict[str, str]] = {
        "seed": "train.seed", "data_seed": "train.seed",
        "label_names": "(set by nlp-ssl from the objective)",
        "train_sampling_strategy": "(set by nlp-ssl: packed blocks all have one length)",
        "length_column_name": "(set by nlp-ssl: packed blocks all have one length)",
        "logging_first_step": "(set by nlp-ssl: the first step is always logged)",
        "ddp_find_unused_parameters": "(set by nlp-ssl: every parameter takes part in each step)"}

    def validate(self) -> list[str]:
        problems = super().validate()
        if self.max_eval_samples < 1:
            problems.append(f"max_eval_samples: must be at least 1, got {self.max_eval_samples}")
        if self.learning_rate <= 0:
            problems.append("learning_rate: must be positive")
        if self.max_time_minutes is not None and self.max_time_minutes <= 0:
            problems.append("max_time_minutes: must be positive")
        if self.max_tokens is not None and self.max_tokens < 1:
            problems.append("max_tokens: must be positive, or null (not set)")
        unit = {"max_time_minutes": self.max_time_minutes is not None, "max_steps": self.max_steps != -1,
                "max_tokens": self.max_tokens is not None, "num_train_epochs": self.num_train_epochs is not None}
        chosen = [k for k, v in unit.items() if v]
        if len(chosen) > 1:
            unset = {"max_time_minutes": "max_time_minutes: null", "max_steps": "max_steps: -1",
                     "max_tokens": "max_tokens: null", "num_train_epochs": "num_train_epochs: null"}
            problems.append(f"{' and '.join(chosen)}: set together, but a run's length is given in one unit "
                            f"(time, steps, tokens or passes); keep one and set the other(s) to not set ("
                            + ", ".join(unset[k] for k in chosen[1:]) + f" to keep {chosen[0]})")
        return problems

    def trainer_length(self, tokens_per_step: int | None = None) -> tuple[int, float]:
        """(max_steps, num_train_epochs) for `TrainingArguments`: a time budget runs until the deadline stops it;
        a token budget needs `tokens_per_step` (global batch x block size).

        Example:
            >>> TrainConfig(max_tokens=1_000_000, per_device_train_batch_size=32).trainer_length(32 * 128)
            (245, 1.0)
        """
        if self.max_time_minutes is not None:
            return 10**9, 1.0  # never reached: the TimeBudget callback stops training
        if self.max_steps != -1:
            return self.max_steps, 1.0
        if self.max_tokens is not None:
            if not tokens_per_step:
                raise ValueError("max_tokens: the run's length needs the tokens per optimizer step")
            return math.ceil(self.max_tokens / tokens_per_step), 1.0
        return -1, self.num_train_epochs if self.num_train_epochs is not None else 1.0

    def run_length(self) -> dict[str, Any]:
        """The unit the run's length was given in and its value (recorded with a figure).

        Example:
            >>> TrainConfig(max_steps=600).run_length()
            {'unit': 'max_steps', 'value': 600, 'machine_speed_dependent': False}
        """
        if self.max_time_minutes is not None:
            return {"unit": "max_time_minutes", "value": self.max_time_minutes, "machine_speed_dependent": True}
        if self.max_steps != -1:
            return {"unit": "max_steps", "value": self.max_steps, "machine_speed_dependent": False}
        if self.max_tokens is not None:
            return {"unit": "max_tokens", "value": self.max_tokens, "machine_speed_dependent": False}
        return {"unit": "num_train_epochs", "value": self.num_train_epochs if self.num_train_epochs is not None else 1.0,
                "machine_speed_dependent": False}

    def trainer_settings(self) -> dict[str, Any]:
        # the Trainer evaluates the objective on the fixed validation blocks
        return {"eval_strategy": "steps" if self.eval_steps else "no", "eval_steps": self.eval_steps or None,
                "logging_first_step": True, "ddp_find_unused_parameters": False}


@dataclass
class FinetuneTrainConfig(OptimizationConfig):
    """Optimisation of a fine-tuning run (`nlp-ssl finetune`): the keys of `OptimizationConfig`, with a
    learning-rate grid, the task model's dropout, layer-wise rates and selection during training.

    Attributes:
        learning_rate: peak learning rate; or a list of rates, a grid: each rate is trained with the first seed
            and scored on the task's selection split; the best one then runs with every seed.
        per_device_train_batch_size: training examples (QA: windows) per device per step.
        per_device_eval_batch_size: examples per prediction batch (independent of training).
        num_train_epochs: passes over the training set when max_steps is -1.
        max_steps: optimizer steps (-1: use num_train_epochs).
        warmup_ratio: share of the steps spent warming up; then linear (or cosine) decay to zero.
        dropout: hidden, attention and classifier dropout of the task model (the encoder may have been
            pretrained without).
        group_by_length: batch examples of similar length together (less padding); the order stays random.
        layer_lr_decay: layer-wise learning-rate decay: the task head (and pooler) trains at the learning rate,
            encoder layer l of L at rate x decay^(L + 1 - l), the embeddings at rate x decay^(L + 1) (ELECTRA,
            Clark et al. 2020, use 0.8 for base models). 1: one rate for all.
        extend_lr_grid: when the best rate of a grid of two or more sits at the grid's edge, also try one step
            beyond that edge (the step is the ratio of the two outermost rates on that side) and pick again.
        eval_steps: score the selection split every N optimizer steps during training, record the learning
            curve (learning_curve.json, plotted in plots/training.png) and keep the best weights (classification,
            regression and extractive QA; 0: score once at the end).
        early_stopping_patience: with eval_steps, stop after this many evaluations without a new best
            (0: train to the end of the schedule; the best weights are kept either way).
        metric_for_best_model: with eval_steps, the selection metric that picks the best weights (null: the
            task's first metric; QA: f1). Classification and regression also offer `loss` (the selection split's
            cross-entropy / mean squared error).
        greater_is_better: whether a higher metric_for_best_model is better (null: false for names ending in
            `loss`, true otherwise, as in the Hugging Face Trainer).
        load_best_model_at_end: with eval_steps, end with the best weights (false: the last ones; the curve is
            recorded either way).
        save_steps: write a mid-run checkpoint every N optimizer steps into output_dir/checkpoints (0: none), each
            marked complete only once all of its files are written (see `nlp_ssl.checkpoints`).
        resume: continue an interrupted run from its latest complete checkpoint (same config; a grid resumes
            the interrupted cell, finished cells are reused either way). False with checkpoints present: refused.
    """

    learning_rate: float | list[float] = 1e-4
    per_device_eval_batch_size: int = 256
    num_train_epochs: float = 3.0
    dropout: float = 0.1
    group_by_length: bool = True
    layer_lr_decay: float = 1.0
    extend_lr_grid: bool = False
    early_stopping_patience: int = 0
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    load_best_model_at_end: bool = True

    RENAMED: ClassVar[dict[str, str]] = {**OptimizationConfig.RENAMED, "learning_rates": "learning_rate",
                                         "eval_batch_size": "per_device_eval_batch_size"}
    OWN_ARGS: ClassVar[dict[str, str]] = {
        "seed": "seed", "data_seed": "seed", "label_names": "(set by nlp-ssl from the task)",
        "train_sampling_strategy": "train.group_by_length", "length_column_name": "train.group_by_length",
        "load_best_model_at_end": "train.load_best_model_at_end", "metric_for_best_model": "train.metric_for_best_model",
        "greater_is_better": "train.greater_is_better"}

    def best_is_greater(self) -> bool:
        """Whether a higher metric_for_best_model is better (the Trainer's rule: not for `*loss`)."""
        if self.greater_is_better is not None:
            return self.greater_is_better
        return not (self.metric_for_best_model or "").endswith("loss")

    def validate(self) -> list[str]:
        problems = super().validate()
        grid = self.learning_rate_grid
        if not grid or any(lr <= 0 for lr in grid) or len(set(grid)) != len(grid):
            problems.append(f"learning_rate: a positive rate, or a list of distinct positive rates, got {self.learning_rate}")
        if not self.eval_steps:
            set_ = [k for k in ("metric_for_best_model", "greater_is_better") if getattr(self, k) is not None]
            if set_:
                problems.append(f"{', '.join(set_)}: pick the best weights of a learning curve; set eval_steps > 0")
        if not 0 < self.layer_lr_decay <= 1:
            problems.append(f"layer_lr_decay: a factor in (0, 1], got {self.layer_lr_decay}")
        if self.early_stopping_patience < 0:
            problems.append(f"early_stopping_patience: must be 0 or more, got {self.early_stopping_patience}")
        if self.early_stopping_patience and not self.eval_steps:
            problems.append("early_stopping_patience: needs eval_steps > 0 (how often to score the selection split)")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout: must be in [0, 1), got {self.dropout}")
        return problems

    def trainer_settings(self) -> dict[str, Any]:
        # evaluation is nlp-ssl's own (`tasks.train.selection_early_stopping`, then prediction): the Trainer's is off
        return {"eval_strategy": "no",
                "train_sampling_strategy": "group_by_length" if self.group_by_length else "random",
                "length_column_name": "length"}


# ----------------------------------------------------------------------------------------------------------
# TrainingArguments


# TrainingArguments fields that nlp-ssl sets from its own keys (or itself) in both commands: refused in
# `train.training_args`, with the key to use instead (each config class adds its own: `project_args`).
PROJECT_ARGS: dict[str, str] = {
    "output_dir": "output_dir", "overwrite_output_dir": "overwrite",
    "per_device_train_batch_size": "train.per_device_train_batch_size",
    "per_device_eval_batch_size": "train.per_device_eval_batch_size",
    "learning_rate": "train.learning_rate", "weight_decay": "train.weight_decay",
    "adam_beta1": "train.adam_beta1", "adam_beta2": "train.adam_beta2", "adam_epsilon": "train.adam_epsilon",
    "max_grad_norm": "train.max_grad_norm", "warmup_steps": "train.warmup_ratio", "warmup_ratio": "train.warmup_ratio",
    "lr_scheduler_type": "train.lr_scheduler_type", "num_train_epochs": "train.num_train_epochs",
    "max_steps": "train.max_steps",
    "logging_steps": "train.logging_steps", "logging_strategy": "train.logging_steps", "report_to": "train.report_to",
    "bf16": "train.bf16", "fp16": "train.fp16",
    "gradient_accumulation_steps": "train.gradient_accumulation_steps",
    "gradient_checkpointing": "impl.gradient_checkpointing", "activation_checkpointing": "impl.gradient_checkpointing",
    "torch_compile": "impl.torch_compile", "dataloader_num_workers": "impl.dataloader_num_workers",
    "optim": "train.optim",
    "eval_strategy": "train.eval_steps", "eval_steps": "train.eval_steps", "do_eval": "train.eval_steps",
    "save_strategy": "train.save_steps", "save_steps": "train.save_steps",
    "save_total_limit": "train.save_total_limit", "resume_from_checkpoint": "train.resume",
    "push_to_hub": "hub.push", "hub_model_id": "hub.repo_id", "hub_private_repo": "hub.private",
    "hub_revision": "hub.revision", "remove_unused_columns": "(set by nlp-ssl: the collator picks the columns)",
    "use_cpu": "(chosen from the hardware: a CUDA GPU when present)",
    "disable_tqdm": "(progress follows the terminal)",
}


def training_arguments(output_dir: str | Path, train: OptimizationConfig, impl: ImplConfig, *, seed: int,
                       learning_rate: float | None = None, checkpoints: bool = True,
                       cuda_available: bool | None = None, **settings: Any):
    """The `TrainingArguments` of a pretraining or fine-tuning run: the shared `train` keys one to one, the
    `impl` keys, then what the command sets its own way (`train.trainer_settings()`: evaluation, sampling),
    then `settings` (what the caller knows only at run time, e.g. `label_names`), and `train.training_args`
    last.

    Args:
        output_dir: where the Trainer writes checkpoints (`checkpoint-N`).
        train, impl: the command's `train` and `impl` sections.
        seed: seed of initialisation and data order (pretraining: train.seed; fine-tuning: the run's seed).
        learning_rate: the peak rate (None: train.learning_rate; a fine-tuning grid passes each of its rates).
        checkpoints: whether the run keeps mid-run checkpoints (every train.save_steps); false: none are written.
        cuda_available: train on a CUDA GPU (None: when there is one).

    Example:
        >>> args = training_arguments("out", FinetuneTrainConfig(lr_scheduler_type="constant"), ImplConfig(),
        ...                           seed=1)  # doctest: +SKIP
        >>> args.lr_scheduler_type.value, args.warmup_steps  # doctest: +SKIP
        ('constant_with_warmup', 0.1)
    """
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    save = checkpoints and train.save_steps > 0
    max_steps, num_train_epochs = train.trainer_length(1)  # a token budget: the caller sets max_steps afterwards
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=train.per_device_train_batch_size,
        per_device_eval_batch_size=train.per_device_eval_batch_size or 2 * train.per_device_train_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        learning_rate=train.learning_rate_grid[0] if learning_rate is None else learning_rate,
        weight_decay=train.weight_decay,
        adam_beta1=train.adam_beta1, adam_beta2=train.adam_beta2, adam_epsilon=train.adam_epsilon,
        max_grad_norm=train.max_grad_norm,
        warmup_steps=train.warmup_ratio,  # transformers 5 has no warmup_ratio: a float below 1 is a ratio of the run
        lr_scheduler_type=SCHEDULERS.get(train.lr_scheduler_type, train.lr_scheduler_type),
        max_steps=max_steps, num_train_epochs=num_train_epochs,
        save_strategy="steps" if save else "no", **({"save_steps": train.save_steps} if save else {}),
        save_total_limit=train.save_total_limit,
        logging_steps=train.logging_steps,
        report_to=[r for r in train.report_to if r != "none"],
        seed=seed, data_seed=seed,
        bf16=train.bf16, fp16=train.fp16, optim=train.optim,
        # transformers 5 renamed gradient_checkpointing (the name users know, kept as the key) to this
        activation_checkpointing=impl.gradient_checkpointing,
        torch_compile=impl.torch_compile, dataloader_num_workers=impl.dataloader_num_workers,
        remove_unused_columns=False,  # the collator picks the columns (pretraining's needs `idx`, `word_start`)
        label_names=["labels"],
        use_cpu=not cuda,
    )
    kwargs.update(train.trainer_settings())
    kwargs.update(settings)
    clash = sorted(set(kwargs) & set(train.training_args))
    if clash:  # trainer_option_problems reports these first, naming the key to use
        raise ConfigError([f"train.training_args.{k}: set by nlp-ssl" for k in clash])
    return TrainingArguments(**kwargs, **train.training_args)


def trainer_option_problems(cfg: OptimizationConfig, cuda_available: bool | None = None,
                            impl: ImplConfig | None = None) -> list[str]:
    """What the Trainer would refuse (or silently do wrong) in a `train` section, checked before any data is
    loaded: `training_args` keys (unknown -> a close match; set by nlp-ssl -> its key), `optim`, fp16 without
    a GPU, and the values TrainingArguments itself rejects.

    Example:
        >>> trainer_option_problems(FinetuneTrainConfig(training_args={"label_smothing_factor": 0.1}))
        ["train.training_args.label_smothing_factor: not a TrainingArguments field; did you mean 'label_smoothing_factor'?"]
    """
    import dataclasses
    import difflib
    import typing

    import torch
    from transformers import TrainingArguments
    from transformers.training_args import OptimizerNames

    from nlp_ssl.config import _convert  # the config loader's type check, on the Trainer's own annotations

    problems = []
    project = cfg.project_args()
    fields = [f.name for f in dataclasses.fields(TrainingArguments) if f.init]
    hints = typing.get_type_hints(TrainingArguments)
    for key, value in cfg.training_args.items():
        where = f"train.training_args.{key}"
        if key in fields and key not in project:
            _convert(value, hints[key], where, problems)
        elif key in project:
            fix = project[key]
            problems.append(f"{where}: set by nlp-ssl; " + (fix[1:-1] if fix.startswith("(") else f"use {fix}"))
        elif key not in fields:
            close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
            problems.append(f"{where}: not a TrainingArguments field" +
                            (f"; did you mean '{close[0]}'?" if close else " (see transformers.TrainingArguments)"))
    optims = [o.value for o in OptimizerNames]
    if cfg.optim not in optims:
        close = difflib.get_close_matches(cfg.optim, optims, n=1)
        problems.append(f"train.optim: unknown optimizer {cfg.optim!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                        + " (e.g. adamw_torch, adamw_torch_fused, adafactor, sgd)")
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if cfg.fp16 and not cuda:
        problems.append("train.fp16: float16 training needs a CUDA GPU and none is available; on CPU use "
                        "train.bf16=true (or neither)")
    if not problems:  # the values TrainingArguments itself checks (types, combinations)
        import tempfile

        try:
            with tempfile.TemporaryDirectory() as tmp:
                training_arguments(tmp, cfg, impl or ImplConfig(), seed=0, cuda_available=cuda)
        except (TypeError, ValueError) as e:
            problems.append(f"train.training_args: the Trainer refuses these settings: {e}")
    return problems


def check_trainer_options(cfg: OptimizationConfig, impl: ImplConfig | None = None) -> None:
    """Raise every `trainer_option_problems` at once as a ConfigError."""
    problems = trainer_option_problems(cfg, impl=impl)
    if problems:
        raise ConfigError(problems)


# ----------------------------------------------------------------------------------------------------------
# Learning-rate schedules and layer-wise rates


def schedule_factor(progress: float, warmup: float, kind: str) -> float:
    """Learning-rate multiplier at `progress` in [0, 1] of the run: linear warm-up, then decay to zero at 1
    (`constant`: stays at 1). The time-based schedule of a wall-clock budget (`training.make_trainer_class`).

    Example:
        >>> schedule_factor(0.05, 0.1, "linear"), schedule_factor(0.5, 0.2, "constant"), schedule_factor(1.0, 0.1, "cosine")
        (0.5, 1.0, 0.0)
    """
    if progress >= 1:
        return 0.0
    if progress < warmup:
        return progress / warmup
    if kind == "constant":
        return 1.0
    rest = (progress - warmup) / (1 - warmup)
    return 1 - rest if kind == "linear" else 0.5 * (1 + math.cos(math.pi * rest))


_LAYER = re.compile(r"\.layers?\.(\d+)\.")


def layer_depth(name: str, num_layers: int) -> int:
    """Depth of a parameter for layer-wise rates: 0 embeddings, l + 1 for encoder layer l (0-based), and
    num_layers + 1 for everything above the encoder (pooler, final norm, task head).

    Example:
        >>> layer_depth("bert.encoder.layer.3.output.dense.weight", 4), layer_depth("classifier.weight", 4)
        (4, 5)
    """
    m = _LAYER.search(name)
    if m:
        return int(m.group(1)) + 1
    if "embeddings" in name or "embed_tokens" in name:
        return 0
    return num_layers + 1


def layerwise_param_groups(model, lr: float, decay: float, weight_decay: float,
                           decay_names: set[str] | None = None) -> list[dict[str, Any]]:
    """AdamW parameter groups with rate lr x decay^(L + 1 - depth) (see `layer_depth`), each split into
    with / without weight decay (`decay_names`: the parameters that get it; None: all but biases and norms)."""
    num_layers = model.config.num_hidden_layers
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        depth = layer_depth(name, num_layers)
        wd = name in decay_names if decay_names is not None else not (name.endswith("bias") or "norm" in name.lower())
        g = groups.setdefault((depth, wd), {"params": [], "names": [], "lr": lr * decay ** (num_layers + 1 - depth),
                                            "weight_decay": weight_decay if wd else 0.0})
        g["params"].append(p)
        g["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def with_layerwise_lr(trainer_class, decay: float):
    """A Trainer subclass whose AdamW uses `layerwise_param_groups` (the Trainer's own optimizer otherwise)."""

    class LayerwiseLRTrainer(trainer_class):
        def create_optimizer(self, model=None):
            if self.optimizer is None:
                m = self.model if model is None else model
                groups = layerwise_param_groups(m, self.args.learning_rate, decay, self.args.weight_decay,
                                                set(self.get_decay_parameter_names(m)))
                for g in groups:
                    g.pop("names")
                optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, m)
                self.optimizer = optimizer_cls(groups, **kwargs)
            return self.optimizer

    return LayerwiseLRTrainer
