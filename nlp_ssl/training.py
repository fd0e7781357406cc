"""Training on top of the Hugging Face `Trainer`: packed-block datasets, a wall-clock budget whose learning-rate
schedule ends exactly at the deadline, a stop on non-finite loss, masked-LM metrics, throughput logging.

Everything else (DDP/FSDP/DeepSpeed through `accelerate launch`, checkpoints, resume, TensorBoard, Hub push,
AdamW without weight decay on norms and biases) is the Trainer's own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from nlp_ssl.errors import TrainingError  # noqa: F401  (re-exported: raised here, defined with the others)


TIME_BUDGET_FILE = "time_budget.json"  # elapsed training seconds, saved in each checkpoint


@dataclass
class TrainConfig:
    """Optimisation and run control (what changes results).

    Attributes:
        per_device_train_batch_size: blocks per device per step; the global batch is this x devices x
            accumulation.
        per_device_eval_batch_size: blocks per device per evaluation batch (null: twice the training batch).
        gradient_accumulation_steps: micro-batches per optimizer step.
        learning_rate: peak learning rate.
        weight_decay: AdamW decoupled weight decay (not applied to norms and biases).
        adam_beta1, adam_beta2, adam_epsilon: AdamW settings.
        max_grad_norm: gradient clipping (0: none).
        warmup_ratio: share of the run (steps, or time under max_time_minutes) spent warming up.
        lr_scheduler_type: decay after warm-up: `linear` or `cosine` to zero, or `constant`.
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
        eval_steps: evaluate every N steps (0: only at the end).
        max_eval_samples: validation blocks used for evaluation, the first N (masked once, the same every time).
        save_steps: checkpoint every N steps (0: only the final model).
        save_total_limit: checkpoints kept.
        logging_steps: log every N steps.
        seed: seed of initialisation, data order and masks.
        resume: continue from the last checkpoint in output_dir.
        report_to: logging integrations (`tensorboard`, or `none`).
        bf16: bfloat16 autocast (GPU; on this project's CPUs it is far slower than fp32).
    """

    per_device_train_batch_size: int = 64
    per_device_eval_batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    adam_epsilon: float = 1e-6
    max_grad_norm: float = 1.0
    warmup_ratio: float = 0.06
    lr_scheduler_type: Literal["linear", "cosine", "constant"] = "linear"
    max_steps: int = -1
    num_train_epochs: float | None = None
    max_time_minutes: float | None = None
    max_tokens: int | None = None
    eval_steps: int = 500
    max_eval_samples: int = 1000
    save_steps: int = 500
    save_total_limit: int = 2
    logging_steps: int = 50
    seed: int = 0
    resume: bool = False
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    bf16: bool = False

    # old spellings, refused with the new name (and migrated when an older run's config.yaml is read)
    RENAMED: ClassVar[dict[str, str]] = {"per_device_batch_size": "per_device_train_batch_size",
                                         "num_epochs": "num_train_epochs", "lr_scheduler": "lr_scheduler_type",
                                         "overwrite": "/overwrite", "eval_blocks": "max_eval_samples"}

    # keys fine-tuning keeps in `train` that pretraining keeps in `impl` (speed only, never results)
    ELSEWHERE: ClassVar[dict[str, str]] = {
        name: f"pretraining keeps this speed-only setting in impl; write 'impl.{name}' instead"
        for name in ("torch_compile", "dataloader_num_workers")}

    def validate(self) -> list[str]:
        problems = []
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps", "max_eval_samples"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be at least 1")
        if self.per_device_eval_batch_size is not None and self.per_device_eval_batch_size < 1:
            problems.append("per_device_eval_batch_size: must be at least 1, or null (twice the training batch)")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if self.learning_rate <= 0:
            problems.append("learning_rate: must be positive")
        if self.max_time_minutes is not None and self.max_time_minutes <= 0:
            problems.append("max_time_minutes: must be positive")
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append("max_steps: must be positive, or -1 (not set)")
        if self.num_train_epochs is not None and self.num_train_epochs <= 0:
            problems.append("num_train_epochs: must be positive, or null (not set)")
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
        problems += optimizer_range_problems(self)
        for name, what in (("save_steps", "only the final model"), ("eval_steps", "only at the end")):
            if getattr(self, name) < 0:
                problems.append(f"{name}: must be 0 ({what}) or positive, got {getattr(self, name)}")
        if self.save_total_limit < 1:
            problems.append(f"save_total_limit: must be at least 1 (the checkpoint to resume from), got {self.save_total_limit}")
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


def optimizer_range_problems(cfg) -> list[str]:
    """Range checks of AdamW settings shared by pretraining and fine-tuning (values that the optimizer would
    accept silently, or reject only after the data is loaded)."""
    problems = []
    for name in ("adam_beta1", "adam_beta2"):
        value = getattr(cfg, name, None)
        if value is not None and not 0 <= value < 1:
            problems.append(f"{name}: must be in [0, 1), got {value}")
    eps = getattr(cfg, "adam_epsilon", None)
    if eps is not None and eps <= 0:
        problems.append(f"adam_epsilon: must be positive, got {eps}")
    if cfg.weight_decay < 0:
        problems.append(f"weight_decay: must be 0 or more, got {cfg.weight_decay}")
    if cfg.max_grad_norm < 0:
        problems.append(f"max_grad_norm: must be 0 (off) or positive, got {cfg.max_grad_norm}")
    return problems


@dataclass
class ImplConfig:
    """Settings that change speed only, never results (cramming's `impl` section).

    Attributes:
        torch_compile: compile the model with `torch.compile` (first steps slower; later ones faster on GPU).
        dataloader_num_workers: worker processes that load batches (0: in the training process).
        num_threads: CPU threads torch uses (null: torch's default, all cores).
    """

    torch_compile: bool = False
    dataloader_num_workers: int = 0
    num_threads: int | None = None


def schedule_factor(progress: float, warmup: float, kind: str) -> float:
    """Learning-rate multiplier at `progress` in [0, 1] of the run: linear warm-up, then decay to zero at 1."""
    if progress >= 1:
        return 0.0
    if progress < warmup:
        return progress / warmup
    if kind == "constant":
        return 1.0
    rest = (progress - warmup) / (1 - warmup)
    return 1 - rest if kind == "linear" else 0.5 * (1 + math.cos(math.pi * rest))


class PackedBlocks:
    """A map-style torch dataset over packed blocks that also yields each block's index (`idx`).

    The index lets the collator seed masks per example (see `objectives.masking.BatchRNG`).
    """

    def __init__(self, ds, columns: tuple[str, ...] = ("input_ids",)):
        self.ds = ds.with_format("numpy", columns=[c for c in columns if c in ds.column_names])

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.ds[int(i)], "idx": int(i)}

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        batch = self.ds[list(map(int, indices))]  # one Arrow read for the whole batch
        return [{**{k: v[j] for k, v in batch.items()}, "idx": int(i)} for j, i in enumerate(indices)]


def mlm_preprocess_logits(logits, labels):
    """Predicted ids aligned with labels, (B, T), whether the model returned dense (B, T, V) or sparse (N, V) logits."""
    import torch

    if isinstance(logits, tuple):
        logits = logits[0]
    if logits.dim() == 3:
        return logits.argmax(-1)
    preds = torch.full_like(labels, -100)
    preds[labels != -100] = logits.argmax(-1)
    return preds


def mlm_metrics(eval_pred) -> dict[str, float]:
    """Accuracy of the masked-token predictions (positions with a label only)."""
    preds, labels = eval_pred.predictions, eval_pred.label_ids
    selected = labels != -100
    return {"mlm_accuracy": float((preds[selected] == labels[selected]).mean()) if selected.any() else float("nan")}


def trainer_callbacks():
    """The callback classes (TimeBudget, Throughput, CollatorEpoch); built on first use so importing this module
    does not import transformers."""
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        """A wall-clock budget: the share of it used (`progress()`), the same on every rank, and a stop at the deadline.

        The trainer calls `progress()` as each optimizer step starts (its first micro-batch) and sets that step's
        learning rate from it, so the rate is the schedule at the step's own start (not one step late, nor from
        before an evaluation or save that came between two steps). Elapsed time is
        the slowest rank's (an all-reduce of one number), so every rank uses the same rate and stops at the
        same step. `elapsed_before` is the time a resumed run had already trained (from its checkpoint).

        Args:
            seconds: the budget.
            clock: seconds from an arbitrary origin (`time.monotonic`; tests pass a fake clock).
        """

        def __init__(self, seconds: float, clock=time.monotonic):
            self.seconds = seconds
            self.clock = clock
            self.start = None
            self.elapsed_before = 0.0
            # the elapsed time is saved in each checkpoint by `checkpoints.CompleteCheckpoints`, before its marker

        def restore(self, checkpoint: str) -> None:
            """Continue from the elapsed time recorded in `checkpoint` (none recorded: from zero)."""
            import json
            import os

            path = os.path.join(checkpoint, TIME_BUDGET_FILE)
            if os.path.exists(path):
                with open(path) as f:
                    self.elapsed_before = float(json.load(f)["elapsed_seconds"])

        def elapsed(self) -> float:
            """Training seconds so far on this process (including the resumed run's earlier time)."""
            return self.elapsed_before + (self.clock() - self.start if self.start is not None else 0.0)

        def synced_elapsed(self) -> float:
            """The largest `elapsed()` over all ranks (every rank must call it at the same point)."""
            import torch.distributed as dist

            elapsed = self.elapsed()
            if dist.is_available() and dist.is_initialized():
                import torch

                t = torch.tensor([elapsed], dtype=torch.float64)
                if dist.get_backend() == "nccl":
                    t = t.cuda()
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                elapsed = float(t.item())
            return elapsed

        def progress(self) -> float:
            """Share of the budget used, in [0, 1]."""
            return min(1.0, self.synced_elapsed() / self.seconds)

        def on_train_begin(self, args, state, control, **kw):
            self.start = self.clock()

        def on_step_end(self, args, state, control, **kw):
            if self.progress() >= 1.0:
                control.should_training_stop = True
                control.should_save = True
            return control

    class Throughput(TrainerCallback):
        """Adds tokens/s of the optimizer steps since the last log to each training log."""

        def __init__(self, tokens_per_step: int):
            self.tokens_per_step = tokens_per_step
            self.last = None

        def on_train_begin(self, args, state, control, **kw):
            self.last = (time.monotonic(), state.global_step)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs is None or "loss" not in logs or self.last is None:
                return
            now = time.monotonic()
            t0, s0 = self.last
            if state.global_step > s0 and now > t0:
                tps = round((state.global_step - s0) * self.tokens_per_step / (now - t0), 1)
                logs["tokens_per_second"] = tps  # for the loggers called after us (console, TensorBoard)
                if state.log_history and state.log_history[-1].get("step") == state.global_step:
                    state.log_history[-1]["tokens_per_second"] = tps  # the Trainer stored its entry before on_log
            self.last = (now, state.global_step)

    class CollatorEpoch(TrainerCallback):
        """Tells the collator the epoch, so per-example masks differ between epochs."""

        def __init__(self, collator):
            self.collator = collator

        def on_epoch_begin(self, args, state, control, **kw):
            if hasattr(self.collator, "epoch"):
                self.collator.epoch = int(state.epoch or 0)

    return TimeBudget, Throughput, CollatorEpoch


def make_trainer_class():
    """`Trainer` with a time-based schedule (when budgeted) and a stop on non-finite loss."""
    import torch
    from transformers import Trainer

    from nlp_ssl.checkpoints import CompleteCheckpoints, last_complete_checkpoint

    class PretrainTrainer(CompleteCheckpoints, Trainer):
        """Args beyond the Trainer's: `time_budget` (a TimeBudget callback, or None: the step-based schedule),
        and the time-based schedule's `warmup_ratio` and `schedule` (`linear`, `cosine` or `constant`)."""

        _time_factor, _rate_set_at_step = 0.0, None  # the time-based rate, and the step it was set for

        def __init__(self, *args, time_budget=None, warmup_ratio: float = 0.0, schedule: str = "linear", **kwargs):
            self.time_budget, self.warmup_ratio, self.schedule = time_budget, warmup_ratio, schedule
            super().__init__(*args, **kwargs)
            if self.time_budget is not None and self.time_budget not in self.callback_handler.callbacks:
                self.add_callback(self.time_budget)  # it must see the run begin and end, or the schedule stands still

        def create_scheduler(self, num_training_steps: int, optimizer=None):
            if self.time_budget is None or self.lr_scheduler is not None:
                return super().create_scheduler(num_training_steps, optimizer)
            # The factor is set when each optimizer step starts (`_set_time_rate`, from the time elapsed then:
            # after any evaluation, save or log that came between the steps); the scheduler's own step after each
            # optimizer step keeps it (so the lambda needs no clock, and no all-reduce).
            self._time_factor = schedule_factor(self.time_budget.progress(), self.warmup_ratio, self.schedule)
            self._rate_set_at_step = None
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer,
                                                                  lambda _step: self._time_factor)
            return self.lr_scheduler

        def _set_time_rate(self) -> None:
            """Under a time budget, the learning rate of the optimizer step about to run: the schedule at the
            elapsed time now (its first micro-batch; once per optimizer step, on every rank at the same point)."""
            if self.time_budget is None or self._rate_set_at_step == self.state.global_step:
                return
            self._rate_set_at_step = self.state.global_step
            self._time_factor = schedule_factor(self.time_budget.progress(), self.warmup_ratio, self.schedule)
            sched = getattr(self.lr_scheduler, "scheduler", self.lr_scheduler)  # under accelerate/DeepSpeed wrappers
            for group, base in zip(self.optimizer.param_groups, sched.base_lrs):
                group["lr"] = base * self._time_factor
            sched._last_lr = [group["lr"] for group in self.optimizer.param_groups]

        # A wrapper of several models (ELECTRA's generator + discriminator, ...) is no PreTrainedModel: the
        # Trainer would save its bare state dict (which safetensors refuses for shared embeddings) and load it
        # back non-strictly. Such a wrapper saves its own standard artifacts and loads them on resume.
        def _save(self, output_dir=None, state_dict=None):
            model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
            if not hasattr(model, "load_checkpoint"):
                return super()._save(output_dir, state_dict)
            if self.args.should_save:
                output_dir = output_dir or self.args.output_dir
                # state_dict: the full weights gathered from all ranks when they are sharded (FSDP), else None
                model.save_pretrained(output_dir, tokenizer=self.processing_class, state_dict=state_dict)
                if self.processing_class is not None:
                    self.processing_class.save_pretrained(output_dir)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            target = self.accelerator.unwrap_model(model or self.model, keep_torch_compile=False)
            # under FSDP a checkpoint holds sharded weights (pytorch_model_fsdp_0/), which the Trainer loads for
            # any module, a wrapper too; the wrapper's own files are written only without sharding
            if not hasattr(target, "load_checkpoint") or self.is_fsdp_enabled:
                return super()._load_from_checkpoint(resume_from_checkpoint, model)
            target.load_checkpoint(resume_from_checkpoint)

        def train(self, resume_from_checkpoint=None, **kwargs):
            if self.time_budget is not None and resume_from_checkpoint:
                ckpt = resume_from_checkpoint
                if ckpt is True:
                    ckpt = last_complete_checkpoint(self.args.output_dir, remove_incomplete=False, log=lambda _: None)
                if ckpt:
                    self.time_budget.restore(ckpt)  # before the scheduler computes its first factor
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

        def training_step(self, model, inputs, num_items_in_batch=None):
            self._set_time_rate()
            loss = super().training_step(model, inputs, num_items_in_batch)
            if not torch.isfinite(loss).all():
                last = last_complete_checkpoint(self.args.output_dir, remove_incomplete=False, log=lambda _: None) \
                    if self.args.output_dir else None
                raise TrainingError(
                    f"loss became {loss.item()} at step {self.state.global_step + 1}; training stopped. "
                    f"Last good checkpoint: {last or 'none saved yet'}. Lower train.learning_rate, raise "
                    "train.warmup_ratio or set train.max_grad_norm, then resume with train.resume=true.")
            return loss

    return PretrainTrainer


def set_tensorboard_dir(trainer, path: str) -> None:
    """Send the trainer's TensorBoard events to `path` (this run's own directory).

    transformers reads its TensorBoard directory from the process-wide `TENSORBOARD_LOGGING_DIR`, so a value set
    for one run would also catch every later run of the same process; setting it per trainer does not.
    """
    from transformers.integrations import TensorBoardCallback

    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, TensorBoardCallback):
            cb.logging_dir = path


def apply_impl(impl: ImplConfig) -> None:
    if impl.num_threads:
        import torch

        torch.set_num_threads(impl.num_threads)


def summarize_log_history(history: list[dict]) -> dict[str, Any]:
    """Last training loss, last eval metrics and mean throughput from the Trainer's log history."""
    train = [h for h in history if "loss" in h]
    evals = [h for h in history if "eval_loss" in h]
    tps = [h["tokens_per_second"] for h in train if "tokens_per_second" in h]
    out: dict[str, Any] = {}
    if train:
        out["train_loss_last"] = train[-1]["loss"]
    if evals:
        out.update({k: v for k, v in evals[-1].items() if k.startswith("eval_")})
    if tps:
        out["tokens_per_second_mean"] = float(np.mean(tps))
    return out
