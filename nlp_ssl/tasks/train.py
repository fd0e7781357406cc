"""Training a task model with the Hugging Face Trainer: the training call itself, scoring the selection split during
training (learning curve, best weights, early stopping; its state survives a resume), and which checkpoint a run
continues from.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nlp_ssl.errors import DataError


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


def train(model, args, train_set, collator, tokenizer, layer_lr_decay: float = 1.0,
          callbacks: tuple = (), checkpoint: str | None = None) -> tuple[Any, dict[str, float]]:
    """Train with the HF Trainer (stops with a clear error on a non-finite loss); returns (trainer, stats).

    With `layer_lr_decay` < 1 the optimizer uses layer-wise rates (`layerwise_param_groups`). An encoder with
    fewer token types than the tokenizer emits for sentence pairs (RoBERTa's one) gets the missing ones first
    (`modeling.align_token_types`), so pair tasks do not index past its table. With `checkpoint` (a complete
    `checkpoint-N`) training resumes from it: weights, optimizer, schedule, data position, random state, and the
    state of callbacks that keep some (`selection_early_stopping`); the stats then cover the whole run."""
    from nlp_ssl.modeling import align_token_types
    from nlp_ssl.optimization import with_layerwise_lr
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
