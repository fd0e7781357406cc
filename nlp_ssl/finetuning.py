"""Fine-tuning components shared by the classification and question-answering recipes: the optimisation
config, building a task model from a pretrained encoder (or the same architecture at random), dynamic padding,
length-sorted prediction, and saving a model directory that loads without `nlp_ssl`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal

import numpy as np

from nlp_ssl.errors import ConfigError, DataError, ModelError

Init = Literal["pretrained", "scratch"]


@dataclass
class FinetuneTrainConfig:
    """Optimisation of a fine-tuning run.

    Attributes:
        learning_rate: peak learning rate; or a list of rates, a grid: each rate is trained with the first seed
            and scored on the task's selection split; the best one then runs with every seed.
        per_device_train_batch_size: training examples (QA: windows) per device per step.
        per_device_eval_batch_size: examples per prediction batch (independent of training).
        num_train_epochs: passes over the training set when max_steps is -1.
        max_steps: optimizer steps (-1: use num_train_epochs).
        warmup_ratio: share of the steps spent warming up; then linear (or cosine) decay to zero.
        lr_scheduler_type: `linear`, `cosine` or `constant` after warm-up.
        weight_decay: AdamW decoupled weight decay (not on norms and biases).
        max_grad_norm: gradient clipping (0: none).
        dropout: hidden, attention and classifier dropout of the task model (the encoder may have been
            pretrained without).
        group_by_length: batch examples of similar length together (less padding); the order stays random.
        logging_steps: log every N steps.
        report_to: logging integrations (`tensorboard`, or empty).
        bf16: bfloat16 autocast (GPU; slower than fp32 on this project's CPUs).
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
        gradient_accumulation_steps: micro-batches per optimizer step (the effective batch is
            per_device_train_batch_size x devices x this).
        fp16: float16 autocast with loss scaling (a CUDA GPU only: refused on CPU, where the Trainer's fp16 is
            slow and unsupported by many kernels; use bf16 there).
        gradient_checkpointing: recompute activations in the backward pass (less memory, ~30% slower).
        torch_compile: compile the model with `torch.compile` (speed only; the first steps are slow).
        dataloader_num_workers: worker processes loading batches (0: in the training process).
        optim: the Trainer's optimizer name (`adamw_torch_fused`, `adamw_torch`, `adafactor`, `sgd`, ...). The
            default is the Trainer's own (transformers 5, torch >= 2.8), which every earlier fine-tuning figure
            used: the fused and unfused AdamW differ in the last bits, and a few-label run amplifies that, so with
            another optimizer a figure re-run at its seed is a different run.
        save_steps: write a mid-run checkpoint every N optimizer steps into output_dir/checkpoints (0: none), each
            marked complete only once all of its files are written (see `nlp_ssl.checkpoints`).
        save_total_limit: mid-run checkpoints kept (the newest).
        resume: continue an interrupted run from its latest complete checkpoint (same config; a grid resumes
            the interrupted cell, finished cells are reused either way). False with checkpoints present: refused.
        training_args: other `transformers.TrainingArguments` fields passed through as given (e.g.
            `{label_smoothing_factor: 0.1, adam_beta2: 0.98}`); an unknown field, or one nlp-ssl sets from its own
            key, is a config error naming the fix.
    """

    learning_rate: float | list[float] = 1e-4
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 256
    num_train_epochs: float = 3.0
    max_steps: int = -1
    warmup_ratio: float = 0.1
    lr_scheduler_type: Literal["linear", "cosine", "constant"] = "linear"
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    dropout: float = 0.1
    group_by_length: bool = True
    logging_steps: int = 50
    report_to: list[str] = field(default_factory=list)
    bf16: bool = False
    layer_lr_decay: float = 1.0
    extend_lr_grid: bool = False
    eval_steps: int = 0
    early_stopping_patience: int = 0
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    load_best_model_at_end: bool = True
    gradient_accumulation_steps: int = 1
    fp16: bool = False
    gradient_checkpointing: bool = False
    torch_compile: bool = False
    dataloader_num_workers: int = 0
    optim: str = "adamw_torch_fused"
    save_steps: int = 0
    save_total_limit: int = 2
    resume: bool = False
    training_args: dict[str, Any] = field(default_factory=dict)

    def best_is_greater(self) -> bool:
        """Whether a higher metric_for_best_model is better (the Trainer's rule: not for `*loss`)."""
        if self.greater_is_better is not None:
            return self.greater_is_better
        return not (self.metric_for_best_model or "").endswith("loss")

    # old spellings, refused with the new name (and migrated when an older run's config.yaml is read)
    RENAMED: ClassVar[dict[str, str]] = {"learning_rates": "learning_rate",
                                         "per_device_batch_size": "per_device_train_batch_size",
                                         "eval_batch_size": "per_device_eval_batch_size",
                                         "num_epochs": "num_train_epochs", "lr_scheduler": "lr_scheduler_type"}

    @property
    def learning_rate_grid(self) -> list[float]:
        """`learning_rate` as a list (one rate, or the grid)."""
        lr = self.learning_rate
        return [float(r) for r in lr] if isinstance(lr, (list, tuple)) else [float(lr)]

    def validate(self) -> list[str]:
        problems = []
        if self.fp16 and self.bf16:
            problems.append("fp16 and bf16: choose one (bf16 on CPUs and recent GPUs, fp16 on older GPUs)")
        for name in ("gradient_accumulation_steps", "save_total_limit"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("dataloader_num_workers", "save_steps"):
            if getattr(self, name) < 0:
                problems.append(f"{name}: must be 0 or more, got {getattr(self, name)}")
        if not self.eval_steps:
            set_ = [k for k in ("metric_for_best_model", "greater_is_better") if getattr(self, k) is not None]
            if set_:
                problems.append(f"{', '.join(set_)}: pick the best weights of a learning curve; set eval_steps > 0")
        if not 0 < self.layer_lr_decay <= 1:
            problems.append(f"layer_lr_decay: a factor in (0, 1], got {self.layer_lr_decay}")
        if self.eval_steps < 0 or self.early_stopping_patience < 0:
            problems.append("eval_steps, early_stopping_patience: must be 0 or more")
        if self.early_stopping_patience and not self.eval_steps:
            problems.append("early_stopping_patience: needs eval_steps > 0 (how often to score the selection split)")
        grid = self.learning_rate_grid
        if not grid or any(lr <= 0 for lr in grid) or len(set(grid)) != len(grid):
            problems.append(f"learning_rate: a positive rate, or a list of distinct positive rates, got {self.learning_rate}")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "logging_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be at least 1")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout: must be in [0, 1), got {self.dropout}")
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append("max_steps: must be positive, or -1 to train for num_train_epochs")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            problems.append("num_train_epochs: must be positive")
        from nlp_ssl.training import optimizer_range_problems

        return problems + optimizer_range_problems(self)


def check_model_dir(path: str, tokenizer: str | None = None) -> None:
    """A pretrained model directory must hold config.json and (unless another tokenizer is given) a tokenizer.
    A Hub id (`bert-base-uncased`) is downloaded into the Hub cache first (`hub.local_path`)."""
    from nlp_ssl.hub import local_path

    p = Path(local_path(path, "model"))
    if tokenizer is not None:
        local_path(tokenizer, "tokenizer")
    if not p.is_dir():
        raise ModelError(f"model: {p} does not exist; pretrain one (`nlp-ssl pretrain CONFIG`) or fix the path")
    if not (p / "config.json").is_file():
        raise ModelError(f"model: {p} holds no config.json; point at a directory written by `nlp-ssl pretrain` "
                          "or `save_pretrained`")
    if tokenizer is None and not (p / "tokenizer.json").is_file():
        raise ModelError(f"model: {p} has no tokenizer (tokenizer.json); save the tokenizer into it, or set "
                          "`tokenizer:` to the tokenizer directory the encoder was pretrained with")


def check_trained_head(path: str, head: str, fix: str) -> None:
    """Refuse a model directory whose weights have no trained `head` (e.g. `ForQuestionAnswering`): loading it
    would silently add a randomly initialised head and answer with noise."""
    try:
        archs = json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError) as e:
        raise ModelError(f"model: {path}/config.json cannot be read ({e}); {fix}") from None
    if not any(str(a).endswith(head) for a in archs):
        raise ModelError(f"model: {path} holds a {', '.join(archs) or 'model'} without a trained {head} head; {fix}")


_DROPOUT_KEYS = {
    "modernbert": ("embedding_dropout", "mlp_dropout", "attention_dropout", "classifier_dropout"),
    "default": ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"),
}


def build_task_model(auto_class, model_dir: str, init: Init, seed: int, dropout: float, **config_kwargs: Any):
    """A task model (`AutoModelFor...`) on the encoder in `model_dir`: its weights (`pretrained`) or the same
    architecture at random (`scratch`, seeded), with the task head initialised from `seed` in both cases."""
    import torch
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    from nlp_ssl.hub import local_path

    model_dir = local_path(model_dir, "model")
    config = AutoConfig.from_pretrained(model_dir, **config_kwargs)
    for key in _DROPOUT_KEYS.get(config.model_type, _DROPOUT_KEYS["default"]):
        setattr(config, key, dropout)
    torch.manual_seed(seed)
    if init == "scratch":
        return auto_class.from_config(config)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized head" notice is expected here
    try:
        return auto_class.from_pretrained(model_dir, config=config)
    finally:
        hf_logging.set_verbosity(verbosity)


class PadCollator:
    """Dynamic padding: pads each batch to its own longest example; drops columns the model does not take."""

    def __init__(self, tokenizer, keep: tuple[str, ...] = ("input_ids", "token_type_ids", "attention_mask", "labels"),
                 pad_to_multiple_of: int | None = None):
        from transformers import DataCollatorWithPadding

        self.keep = keep
        self.pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def __call__(self, features: list[dict]) -> dict:
        return self.pad([{k: v for k, v in f.items() if k in self.keep} for f in features])


# `TrainingArguments` fields that nlp-ssl sets from its own keys (or itself): refused in `train.training_args`,
# with the key to use instead.
PROJECT_ARGS: dict[str, str] = {
    "output_dir": "output_dir", "overwrite_output_dir": "overwrite",
    "per_device_train_batch_size": "train.per_device_train_batch_size",
    "per_device_eval_batch_size": "train.per_device_eval_batch_size",
    "learning_rate": "train.learning_rate", "weight_decay": "train.weight_decay",
    "max_grad_norm": "train.max_grad_norm", "warmup_steps": "train.warmup_ratio", "warmup_ratio": "train.warmup_ratio",
    "lr_scheduler_type": "train.lr_scheduler_type", "num_train_epochs": "train.num_train_epochs",
    "max_steps": "train.max_steps",
    "logging_steps": "train.logging_steps", "logging_strategy": "train.logging_steps", "report_to": "train.report_to",
    "seed": "seed", "data_seed": "seed", "bf16": "train.bf16", "fp16": "train.fp16",
    "train_sampling_strategy": "train.group_by_length", "length_column_name": "train.group_by_length",
    "gradient_accumulation_steps": "train.gradient_accumulation_steps",
    "gradient_checkpointing": "train.gradient_checkpointing", "activation_checkpointing": "train.gradient_checkpointing",
    "torch_compile": "train.torch_compile",
    "dataloader_num_workers": "train.dataloader_num_workers", "optim": "train.optim",
    "eval_strategy": "train.eval_steps", "eval_steps": "train.eval_steps", "do_eval": "train.eval_steps",
    "load_best_model_at_end": "train.load_best_model_at_end", "metric_for_best_model": "train.metric_for_best_model",
    "greater_is_better": "train.greater_is_better", "save_strategy": "train.save_steps", "save_steps": "train.save_steps",
    "save_total_limit": "train.save_total_limit", "resume_from_checkpoint": "train.resume",
    "push_to_hub": "hub.push", "hub_model_id": "hub.repo_id", "hub_private_repo": "hub.private",
    "hub_revision": "hub.revision", "remove_unused_columns": "(set by nlp-ssl: the collator picks the columns)",
    "label_names": "(set by nlp-ssl from the task)", "use_cpu": "(chosen from the hardware: a CUDA GPU when present)",
    "disable_tqdm": "(progress follows the terminal)",
}


def trainer_option_problems(cfg: FinetuneTrainConfig, cuda_available: bool | None = None) -> list[str]:
    """What the Trainer would refuse (or silently do wrong) in the fine-tuning options, checked before any data
    is loaded: `training_args` keys (unknown -> a close match; set by nlp-ssl -> its key), `optim`, fp16 without
    a GPU, and the values TrainingArguments itself rejects.

    Example:
        >>> trainer_option_problems(FinetuneTrainConfig(training_args={"label_smothing_factor": 0.1}))
        ["train.training_args.label_smothing_factor: not a TrainingArguments field; did you mean 'label_smoothing_factor'?"]
    """
    import dataclasses
    import difflib

    import torch
    from transformers import TrainingArguments
    from transformers.training_args import OptimizerNames

    import typing

    from nlp_ssl.config import _convert  # the config loader's type check, on the Trainer's own annotations

    problems = []
    fields = [f.name for f in dataclasses.fields(TrainingArguments) if f.init]
    hints = typing.get_type_hints(TrainingArguments)
    for key, value in cfg.training_args.items():
        where = f"train.training_args.{key}"
        if key in fields and key not in PROJECT_ARGS:
            _convert(value, hints[key], where, problems)
        elif key in PROJECT_ARGS:
            fix = PROJECT_ARGS[key]
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
                training_arguments(tmp, cfg, cfg.learning_rate_grid[0], 0, cuda_available=cuda)
        except (TypeError, ValueError) as e:
            problems.append(f"train.training_args: the Trainer refuses these settings: {e}")
    return problems


def check_trainer_options(cfg: FinetuneTrainConfig) -> None:
    """Raise every `trainer_option_problems` at once as a ConfigError."""
    problems = trainer_option_problems(cfg)
    if problems:
        raise ConfigError(problems)


def training_arguments(out_dir: str, cfg: FinetuneTrainConfig, lr: float, seed: int, checkpoints: bool = False,
                       cuda_available: bool | None = None, **extra: Any):
    """TrainingArguments for a fine-tuning run. Evaluation is nlp-ssl's own (`selection_early_stopping`, then
    `predict`), so the Trainer's is off; with `checkpoints` (train.save_steps > 0) the Trainer writes
    `out_dir/checkpoint-N` every save_steps, else nothing. `train.training_args` is passed through last."""
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    save = checkpoints and cfg.save_steps > 0
    return TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size, learning_rate=lr, weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm, warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio
        lr_scheduler_type={"constant": "constant_with_warmup"}.get(cfg.lr_scheduler_type, cfg.lr_scheduler_type),
        num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps, eval_strategy="no",
        save_strategy="steps" if save else "no", save_steps=cfg.save_steps if save else 500,
        save_total_limit=cfg.save_total_limit if save else None,
        logging_steps=cfg.logging_steps, report_to=list(cfg.report_to), seed=seed, data_seed=seed, bf16=cfg.bf16,
        fp16=cfg.fp16, gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        # transformers 5 renamed gradient_checkpointing (the name users know, kept as the key) to this
        activation_checkpointing=cfg.gradient_checkpointing, torch_compile=cfg.torch_compile,
        dataloader_num_workers=cfg.dataloader_num_workers, optim=cfg.optim,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random", length_column_name="length",
        remove_unused_columns=False, label_names=extra.pop("label_names", ["labels"]),
        use_cpu=not cuda, disable_tqdm=extra.pop("disable_tqdm", None), **extra, **cfg.training_args)


def eval_device(cuda_available: bool | None = None):
    """Where evaluation and prediction run: the CUDA GPU when there is one (as the Trainer trains; under
    `accelerate launch`, this rank's own GPU, `LOCAL_RANK`), else the CPU."""
    import os

    import torch

    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")


def autocast_dtype(bf16: bool, fp16: bool):
    """The autocast dtype evaluation uses: the one training used (train.bf16 / train.fp16), or None (fp32)."""
    import torch

    return torch.bfloat16 if bf16 else torch.float16 if fp16 else None


def precision_of(model_dir: str | Path) -> tuple[bool, bool]:
    """(bf16, fp16) that the run which wrote `model_dir` trained with (its config.yaml), else (False, False)."""
    from nlp_ssl.config import read_yaml

    saved = Path(model_dir) / "config.yaml"
    train = (read_yaml(saved).get("train") or {}) if saved.is_file() else {}
    return bool(train.get("bf16")), bool(train.get("fp16"))


_LAYER = re.compile(r"\.layers?\.(\d+)\.")


def classifier_pooling(model_type: str, pooling: str) -> dict[str, Any]:
    """Config keys that make a sequence classifier pool `cls` or `mean`.

    Mean pooling is offered where the saved model records it and the stock class applies it on loading
    (ModernBERT's `classifier_pooling`), so the fine-tuned directory predicts the same under plain transformers.
    BERT, RoBERTa and ELECTRA classifiers read [CLS] only: a mean-pooled head there would load as a different
    model without nlp_ssl (and custom modelling code is not shipped), so it is refused.

    Example:
        >>> classifier_pooling("modernbert", "mean")
        {'classifier_pooling': 'mean'}
    """
    if model_type == "modernbert":
        return {"classifier_pooling": pooling}
    if pooling != "cls":
        raise ConfigError([f"pooling: mean needs an encoder whose saved classifier records its pooling (modernbert); "
                           f"a {model_type} classifier reads [CLS] only and would not load as trained. Use pooling: cls"])
    return {}


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


SELECTION_STATE = "nlp_ssl_selection.json"  # the learning curve and best-so-far, in each checkpoint
SELECTION_BEST = "nlp_ssl_selection_best.safetensors"  # the best weights so far, in each checkpoint


def selection_early_stopping(evaluate, metric: str, every: int, patience: int = 0, greater_is_better: bool = True,
                             load_best: bool = True):
    """A TrainerCallback that scores the model every `every` steps with `evaluate(model) -> {metric: value}`,
    records the learning curve (`.curve`: [{step, <metrics>}]), keeps a copy of the best weights (higher is
    better unless `greater_is_better` is false), stops after `patience` evaluations without a new best (0:
    never), and at the end of training loads the best weights (`load_best`) - the Trainer's
    load_best_model_at_end, metric_for_best_model and EarlyStoppingCallback, on nlp-ssl's own selection scoring.

    Its state survives a resume: `save_to_checkpoint(dir)` (called by `checkpoints.CompleteCheckpoints` before a
    checkpoint's completeness marker) writes the curve, the counters and the best weights; `restore(dir)` reads
    them back, so a resumed run picks the same best weights and stops at the same step as an uninterrupted one."""
    from transformers import TrainerCallback

    sign = 1.0 if greater_is_better else -1.0

    class SelectionEarlyStopping(TrainerCallback):
        def __init__(self):
            self.curve: list[dict[str, Any]] = []
            self.best, self.best_step, self.best_state, self.since_best = -math.inf * sign, None, None, 0
            self.finished = False

        def _score(self, step: int, model, control) -> None:
            scores = evaluate(model)
            value = scores[metric]
            self.curve.append({"step": step, **{k: v for k, v in scores.items() if isinstance(v, (int, float))}})
            if sign * value > sign * self.best:  # NaN never counts as a best
                self.best, self.best_step, self.since_best = value, step, 0
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                self.since_best += 1
                if patience and self.since_best >= patience:
                    control.should_training_stop = True
            print(f"  step {step}: {metric} {value:.4f} (best {self.best:.4f} at step {self.best_step})", flush=True)

        @property
        def stopped(self) -> bool:
            """Whether early stopping has ended the run (so a checkpoint taken then is not trained on)."""
            return bool(patience) and self.since_best >= patience

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % every == 0:
                self._score(state.global_step, model, control)
            return control

        def on_train_end(self, args, state, control, model=None, **kw):
            self.finish(model, state.global_step, control)

        def finish(self, model, step: int, control=None) -> None:
            """Score the last step (unless just scored) and load the best weights; once."""
            if self.finished:
                return
            self.finished = True
            if not self.curve or self.curve[-1]["step"] != step:
                from types import SimpleNamespace

                self._score(step, model, control or SimpleNamespace(should_training_stop=False))
            if load_best and self.best_state is not None:
                model.load_state_dict(self.best_state)

        def save_to_checkpoint(self, folder: str | Path) -> None:
            from safetensors.torch import save_file

            folder = Path(folder)
            state = {"curve": self.curve, "best": self.best, "best_step": self.best_step, "since_best": self.since_best}
            (folder / SELECTION_STATE).write_text(json.dumps(state) + "\n")
            if self.best_state is not None:
                save_file({k: v.contiguous() for k, v in self.best_state.items()}, str(folder / SELECTION_BEST))

        def restore(self, folder: str | Path) -> None:
            from safetensors.torch import load_file

            folder = Path(folder)
            if not (folder / SELECTION_STATE).is_file():
                return
            state = json.loads((folder / SELECTION_STATE).read_text())
            self.curve, self.best, self.best_step = state["curve"], state["best"], state["best_step"]
            self.since_best = state["since_best"]
            if (folder / SELECTION_BEST).is_file():
                self.best_state = load_file(str(folder / SELECTION_BEST))

    return SelectionEarlyStopping()


def grid_extension(scores: dict[float, float]) -> float | None:
    """The next rate to try when the best of a grid (>= 2 rates) sits at its edge, else None: one geometric
    step beyond that edge, the step being the ratio between the edge rate and its neighbour.

    Example:
        >>> grid_extension({1e-4: 0.80, 3e-4: 0.82, 1e-3: 0.85})   # best at the top edge -> 1e-3 x (1e-3 / 3e-4)
        0.0033333333333333335
        >>> grid_extension({1e-4: 0.80, 3e-4: 0.86, 1e-3: 0.85}) is None
        True
    """
    valid = {lr: s for lr, s in scores.items() if not math.isnan(s)}
    if len(scores) < 2 or not valid:
        return None
    rates = sorted(scores)
    best = max(valid, key=valid.get)
    if best == rates[-1]:
        return rates[-1] * (rates[-1] / rates[-2])
    if best == rates[0]:
        return rates[0] * (rates[0] / rates[1])
    return None


def train(model, args, train_set, collator, tokenizer, layer_lr_decay: float = 1.0,
          callbacks: tuple = (), checkpoint: str | None = None) -> tuple[Any, dict[str, float]]:
    """Train with the HF Trainer (stops with a clear error on a non-finite loss); returns (trainer, stats).

    With `layer_lr_decay` < 1 the optimizer uses layer-wise rates (`layerwise_param_groups`). An encoder with
    fewer token types than the tokenizer emits for sentence pairs (RoBERTa's one) gets the missing ones first
    (`modeling.align_token_types`), so pair tasks do not index past its table. With `checkpoint` (a complete
    `checkpoint-N`) training resumes from it: weights, optimizer, schedule, data position, random state, and the
    state of callbacks that keep some (`selection_early_stopping`); the stats then cover the whole run."""
    from nlp_ssl.modeling import align_token_types
    from nlp_ssl.training import make_trainer_class

    if len(train_set) == 0:
        raise DataError("the training set is empty")
    align_token_types(model, tokenizer)
    # The task heads' losses are plain batch means that ignore `num_items_in_batch`, but their forward takes
    # **kwargs, so the Trainer (transformers 5) would take the loss as already normalised for gradient
    # accumulation: summed, not averaged, over micro-batches (twice the gradient with 2 steps, clipped differently).
    # Saying so makes the Trainer divide by the accumulation steps, as for any plain loss.
    model.accepts_loss_kwargs = False
    Trainer = make_trainer_class()
    if layer_lr_decay != 1.0:
        Trainer = with_layerwise_lr(Trainer, layer_lr_decay)
    trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=collator,
                      processing_class=tokenizer, callbacks=list(callbacks))
    from nlp_ssl.distributed import refuse_sharded_parameters
    from nlp_ssl.progress import use_run_progress

    refuse_sharded_parameters(trainer)  # FSDP / ZeRO-3: sharded prediction would hang (on GPUs; CPU runs DDP)

    use_run_progress(trainer)  # steps on a terminal; one line per log in a log file
    if checkpoint:
        print(f"resuming from {checkpoint}", flush=True)
        for cb in callbacks:
            if hasattr(cb, "restore"):
                cb.restore(checkpoint)
    seconds = trainer.fit(checkpoint)
    for cb in callbacks:  # a checkpoint that already ended the run is loaded without training: finish here
        if hasattr(cb, "finish"):
            cb.finish(trainer.model, trainer.state.global_step)
    steps = trainer.state.global_step
    examples = steps * args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    return trainer, {"train_seconds": seconds, "steps": steps, "train_loss": trainer.train_loss_mean(),
                     "train_examples_per_second": examples / seconds if seconds else float("nan")}


def refuse_unresumed(folder: str | Path, resume: bool) -> None:
    """Before any work: refuse a run whose checkpoints folder (`output_dir/checkpoints`, or one per grid cell
    below it) holds a complete checkpoint of an interrupted run while train.resume is false.

    Raises:
        OutputError: naming the checkpoint and the fix (resume, or overwrite to start over).
    """
    from nlp_ssl.atomic import is_complete
    from nlp_ssl.checkpoints import checkpoint_step
    from nlp_ssl.errors import OutputError

    folder = Path(folder)
    if resume or not folder.is_dir():
        return
    found = [p for p in (*folder.glob("checkpoint-*"), *folder.glob("*/checkpoint-*"))
             if checkpoint_step(p) >= 0 and is_complete(p)]
    if found:
        raise OutputError(f"{folder} holds checkpoints of an interrupted run (e.g. {found[0]}); set "
                          "train.resume=true to continue it, or overwrite=true to start over")


def checkpoint_to_resume(folder: str | Path, resume: bool) -> str | None:
    """The latest complete checkpoint in `folder` to continue from (None: start), by `train.resume`.

    Raises:
        OutputError: `folder` holds complete checkpoints of this run but resume is false.
    """
    from nlp_ssl.checkpoints import last_complete_checkpoint
    from nlp_ssl.errors import OutputError

    last = last_complete_checkpoint(folder)
    if last is not None and not resume:
        raise OutputError(f"{folder} holds checkpoints of this interrupted run (latest {Path(last).name}); set "
                          "train.resume=true to continue it, or overwrite=true to start over")
    return last


def predict(model, dataset, collator, batch_size: int, output_names: tuple[str, ...] = ("logits",),
            dtype=None) -> tuple[dict[str, np.ndarray], float]:
    """Model outputs for every example, in dataset order; batches are formed from length-sorted examples so
    little padding is computed. Runs where the model is (the GPU after training on one), under autocast to
    `dtype` (`autocast_dtype`: as training; float16 only on a GPU). Returns ({name: array (N, ...)}, seconds).

    Under several ranks (`accelerate launch`) each rank predicts its share (`distributed.shard_of`) and the rows
    are gathered back in dataset order on every rank (`distributed.gather_rows`): the same arrays as one process,
    in 1/world of the time. Every rank must then call it at the same point (it does: the callers are symmetric)."""
    import torch

    from nlp_ssl.distributed import distributed_world, gather_rows, shard_of

    device = next(model.parameters()).device
    if dtype == torch.float16 and device.type != "cuda":
        dtype = None  # float16 autocast is for GPUs (fp16 training is refused on CPU)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    from nlp_ssl.data.sources import column

    lengths = np.asarray(column(dataset, "length")) if "length" in dataset.column_names else np.zeros(len(dataset))
    rank, world = distributed_world()
    order = shard_of(np.argsort(-lengths, kind="stable"), rank, world)
    outs: dict[str, list] = {name: [None] * len(order) for name in output_names}
    position = {int(j): p for p, j in enumerate(order)}  # example index -> row of this rank's share
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    from nlp_ssl.progress import progress_bar

    bar = progress_bar(total=-(-len(order) // batch_size), desc="predict", unit="batch", enabled=rank == 0)
    with torch.inference_mode(), autocast, bar:
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            rows = dataset[[int(j) for j in idx]]  # one Arrow read per batch
            batch = collator([{k: rows[k][r] for k in rows} for r in range(len(idx))])
            batch.pop("labels", None)
            batch.pop("start_positions", None)
            batch.pop("end_positions", None)
            result = model(**{k: v.to(device) for k, v in batch.items()})
            for name in output_names:
                values = result[name].float().cpu().numpy()
                for row, j in enumerate(idx):
                    outs[name][position[int(j)]] = values[row]
            bar.update(1)
    outs = gather_rows(order, outs, len(dataset))  # in dataset order; with one process, only placed
    seconds = time.perf_counter() - t0
    model.train(was_training)
    return {name: _stack(v) for name, v in outs.items()}, seconds


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    """Stack per-example outputs; sequence outputs (different lengths) are padded with -inf."""
    if not rows:
        return np.zeros((0,))
    if rows[0].ndim == 0 or all(r.shape == rows[0].shape for r in rows):
        return np.stack(rows)
    width = max(r.shape[0] for r in rows)
    out = np.full((len(rows), width), -np.inf, dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
    return out


def save_model_dir(out: Path, model, tokenizer, metrics: dict[str, Any]) -> None:
    """A standard model directory: weights + config (with label names), tokenizer, metrics.json."""
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def check_fits(tokenizer, model_config, max_length: int, where: str = "task.max_length") -> None:
    from nlp_ssl.modeling import max_sequence_length

    limit = max_sequence_length(model_config)
    if max_length > limit:
        raise ConfigError([f"{where}: {max_length} tokens exceed the model's {limit} positions; lower it"])
    if len(tokenizer) > model_config.vocab_size:
        raise ModelError(f"tokenizer: {len(tokenizer)} entries but the model's vocabulary has {model_config.vocab_size}; "
                         "use the tokenizer the encoder was pretrained with")
    check_special_ids(tokenizer, model_config)


def check_special_ids(tokenizer, model_config, where: str = "tokenizer") -> None:
    """The special token ids the model was built with (pad, bos, eos, cls, sep) must be the tokenizer's: a
    tokenizer of the same size but another vocabulary would otherwise train and score silently wrong."""
    pairs = [("pad_token_id", tokenizer.pad_token_id), ("bos_token_id", tokenizer.bos_token_id or tokenizer.cls_token_id),
             ("eos_token_id", tokenizer.eos_token_id or tokenizer.sep_token_id), ("cls_token_id", tokenizer.cls_token_id),
             ("sep_token_id", tokenizer.sep_token_id)]
    wrong = [f"{name} {getattr(model_config, name)} in the model but {tok_id} in the tokenizer" for name, tok_id in pairs
             if tok_id is not None and getattr(model_config, name, None) is not None and getattr(model_config, name) != tok_id]
    if wrong:
        raise ModelError(f"{where}: the tokenizer does not match the model ({'; '.join(wrong)}); use the tokenizer "
                         "the encoder was pretrained with")


def is_main_process() -> bool:
    """True on the process that writes outputs (rank 0 under `accelerate launch`, or the only process)."""
    from nlp_ssl.distributed import process_state

    return process_state().is_main_process


def wait_for_everyone() -> None:
    from nlp_ssl.distributed import process_state

    process_state().wait_for_everyone()


@contextlib.contextmanager
def main_process_output(final: str | Path) -> Iterator[Path]:
    """Where a run writes its files: on the main process a temporary directory that replaces `final` when the
    block succeeds (`runinfo.atomic_dir`); on the other ranks a scratch directory that is thrown away. All
    ranks meet after the block, so no rank reads `final` before it is complete."""
    from nlp_ssl.runinfo import atomic_dir

    if is_main_process():
        with atomic_dir(final) as tmp:
            yield tmp
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp)
    wait_for_everyone()


def keep_training_logs(work_dir: str | Path, out: Path, log_history: list[dict]) -> None:
    """Keep what the Trainer logged in its scratch `work_dir`: `log_history.json` and, when TensorBoard logging is
    on (`train.report_to: [tensorboard]`), its event files under `out/tensorboard/`."""
    import shutil

    (out / "log_history.json").write_text(json.dumps(log_history, indent=1) + "\n")
    runs = Path(work_dir) / "runs"  # the Trainer's default TensorBoard directory under its output_dir
    if runs.is_dir():
        shutil.copytree(runs, out / "tensorboard", dirs_exist_ok=True)
