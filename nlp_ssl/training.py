"""Training on top of the Hugging Face `Trainer`: packed-block datasets, a wall-clock budget whose learning-rate
schedule ends exactly at the deadline, a stop on non-finite loss, masked-LM metrics, throughput logging.

Everything else (DDP/FSDP/DeepSpeed through `accelerate launch`, checkpoints, resume, TensorBoard, Hub push,
AdamW without weight decay on norms and biases) is the Trainer's own. The `train:` and `impl:` configs and the
`TrainingArguments` made from them are `nlp_ssl.optimization`'s.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nlp_ssl.errors import TrainingError  # noqa: F401  (re-exported: raised here, defined with the others)
from nlp_ssl.layout import TIME_BUDGET_FILE
from nlp_ssl.optimization import schedule_factor


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
