"""Crash-safe checkpoints on top of the Hugging Face `Trainer`.

The Trainer writes `checkpoint-N/` file by file and then deletes old checkpoints, so a kill during a save
leaves a folder that looks like the newest checkpoint but lacks files (and every later resume failed on it).
Here each checkpoint gets a completeness marker (`nlp_ssl.atomic.write_marker`: every file with its size)
written after all of its files, and old checkpoints are rotated away only after that; on resume,
`last_complete_checkpoint` takes the newest checkpoint whose marker holds and removes incomplete ones,
naming them.

The checkpoint also records what the Trainer forgets on resume: the sum of the training losses so far (so
`train_loss_mean` covers the whole run) and the elapsed training time (for wall-clock budgets).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from nlp_ssl.atomic import MARKER, atomic_write_text, is_complete, write_marker
from nlp_ssl.faults import fault_point
from nlp_ssl.layout import LOG_HISTORY_FILE, METRICS_FILE, TIME_BUDGET_FILE

PROGRESS_FILE = "nlp_ssl_progress.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: str | Path) -> int:
    m = _CHECKPOINT.match(Path(path).name)
    return int(m.group(1)) if m else -1


def last_complete_checkpoint(folder: str | Path, remove_incomplete: bool = True, log=print) -> str | None:
    """The newest `checkpoint-N` in `folder` whose completeness marker holds, or None.

    Incomplete checkpoints (a kill struck while they were written or deleted) are never returned; with
    `remove_incomplete` they are deleted (they were written by this run and can never be completed), each
    named in a message.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted((p for p in folder.iterdir() if p.is_dir() and _CHECKPOINT.match(p.name)), key=checkpoint_step)
    good = None
    for path in found:
        if is_complete(path):
            good = path
        else:
            log(f"skipping incomplete checkpoint {path} (interrupted while it was written or deleted)"
                + ("; removing it" if remove_incomplete else ""))
            if remove_incomplete:
                shutil.rmtree(path, ignore_errors=True)
    return str(good) if good is not None else None


def read_progress(checkpoint: str | Path) -> dict:
    try:
        return json.loads((Path(checkpoint) / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class CompleteCheckpoints:
    """Trainer mixin: a completeness marker written last in every checkpoint, rotation only after it, and the
    run's loss sum carried across resumes (`train_loss_mean()`)."""

    loss_sum_before = 0.0  # the losses of the steps before the resumed checkpoint
    seconds_before = 0.0  # the training seconds of the sessions before the resumed checkpoint
    _fit_started = None  # perf_counter() when this session's training started
    time_budget = None

    def _save_checkpoint(self, model, trial):
        from transformers.trainer_utils import rotate_checkpoints

        limit = self.args.save_total_limit
        self.args.save_total_limit = None  # rotate only once the new checkpoint is complete (below)
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = limit
        if getattr(self.args, "world_size", 1) > 1:
            # every rank writes its own files (rng_state_R.pth) and the Trainer does not wait for them: the marker
            # must list them all, in full, so rank 0 writes it only after every rank is done
            self.accelerator.wait_for_everyone()
        if not self.args.should_save:
            return
        run_dir = self._get_output_dir(trial=trial)
        ckpt = Path(run_dir) / f"checkpoint-{self.state.global_step}"
        progress = {"global_step": self.state.global_step, "train_loss_sum": self.run_loss_sum(),
                    "train_seconds": self.run_seconds()}
        if self.time_budget is not None:
            progress["elapsed_seconds"] = self.time_budget.elapsed()
        atomic_write_text(ckpt / PROGRESS_FILE, json.dumps(progress) + "\n")
        if self.time_budget is not None:
            atomic_write_text(ckpt / TIME_BUDGET_FILE, json.dumps({"elapsed_seconds": progress["elapsed_seconds"]}))
        for cb in self.callback_handler.callbacks:  # callbacks with state of their own (fine-tuning's selection)
            if hasattr(cb, "save_to_checkpoint"):
                cb.save_to_checkpoint(ckpt)
        fault_point("checkpoint_before_marker")
        write_marker(ckpt)
        rotate_checkpoints(output_dir=run_dir, save_total_limit=limit,
                           best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=False)

    def save_model(self, output_dir=None, _internal_call=False):
        super().save_model(output_dir, _internal_call)
        fault_point("save_model")

    def run_loss_sum(self) -> float:
        """Sum of the per-step training losses since step 0 (this session's plus those before a resume)."""
        session = getattr(self, "_total_loss_scalar", 0.0)
        pending = getattr(self, "_tr_loss", None)
        return self.loss_sum_before + session + (float(pending.item()) if pending is not None else 0.0)

    def run_seconds(self) -> float:
        """Training seconds since step 0: this session's so far plus those of the sessions before a resume."""
        import time

        return self.seconds_before + (time.perf_counter() - self._fit_started if self._fit_started else 0.0)

    def train_loss_mean(self) -> float:
        """Mean training loss over every step of the run, after `train()` (which drains the pending loss)."""
        return (self.loss_sum_before + getattr(self, "_total_loss_scalar", 0.0)) / max(self.state.global_step, 1)

    def fit(self, checkpoint: str | None = None) -> float:
        """Train from scratch or resume from `checkpoint`; returns the run's training seconds (the sessions before
        the checkpoint, as recorded in it, plus this one's), so a resumed run reports its whole training time.

        A checkpoint that already ends the run (its step reached max_steps, the time budget is spent, or early
        stopping had stopped it: a kill struck after the last save) is loaded rather than trained on, so the run reports the same steps and
        evaluations as one never interrupted (the Trainer would train one step more).
        """
        import time

        from transformers import TrainerState

        if checkpoint:
            progress = read_progress(checkpoint)
            self.loss_sum_before = float(progress.get("train_loss_sum", 0.0))
            self.seconds_before = float(progress.get("train_seconds", progress.get("elapsed_seconds", 0.0)))
            state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
            budget_spent = self.time_budget is not None and progress.get("elapsed_seconds", 0.0) >= self.time_budget.seconds
            # a callback that had already stopped the run (fine-tuning's early stopping, restored before this)
            stopped = any(getattr(cb, "stopped", False) for cb in self.callback_handler.callbacks)
            if state.global_step >= state.max_steps or budget_spent or stopped:
                self._load_from_checkpoint(checkpoint)
                self.state = state
                self._total_loss_scalar = 0.0
                return self.seconds_before
        self._fit_started = time.perf_counter()
        self.train(resume_from_checkpoint=checkpoint)
        return self.run_seconds()


def save_final(trainer, tokenizer, out: str | Path, metrics: dict, metrics_file: str = METRICS_FILE) -> bool:
    """Save the final model, tokenizer, metrics and log history into `out` (which also holds checkpoints/).

    Collective: every rank calls it. Under FSDP (or DeepSpeed ZeRO-3) the weights are sharded, and all ranks
    first gather them (`distributed.gather_full_state_dict`); then only the process that saves (rank 0) writes.
    Returns whether this process wrote.

    "Finished" means the completeness marker is there (`mark_finished`, called after everything else is
    written): it is removed first here, so a kill from now on leaves a run that is not finished (the next run
    resumes from its last checkpoint), never one that looks finished but lacks a file.
    """
    import os

    from nlp_ssl.atomic import remove_marker
    from nlp_ssl.distributed import gather_full_state_dict

    state_dict = gather_full_state_dict(trainer)  # every rank, or the gather waits forever
    if not trainer.is_world_process_zero():
        return False
    out = Path(out)
    remove_marker(out)
    tmp = out / ".final-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if state_dict is None:
        trainer.save_model(str(tmp))
    else:  # the Trainer's own save_model writes nothing under FSDP's SHARDED_STATE_DICT: save the gathered weights
        trainer._save(str(tmp), state_dict=state_dict)
        fault_point("save_model")
    tokenizer.save_pretrained(str(tmp))
    (tmp / "training_args.bin").unlink(missing_ok=True)
    (tmp / metrics_file).write_text(json.dumps(metrics, indent=2) + "\n")
    (tmp / LOG_HISTORY_FILE).write_text(json.dumps(trainer.state.log_history, indent=1) + "\n")
    names = sorted(f.name for f in tmp.iterdir())
    for name in names:
        if (tmp / name).is_dir() and (out / name).is_dir():  # a sub-artifact (ELECTRA's generator/) left by an
            shutil.rmtree(out / name)                       # interrupted save: os.replace cannot overwrite it
        os.replace(tmp / name, out / name)
    tmp.rmdir()
    return True


def mark_finished(out: str | Path, skip: tuple[str, ...] = ("checkpoints", "tensorboard")) -> None:
    """Write the completeness marker of a finished run dir: every file in it (outside checkpoints/ and
    tensorboard/, and hidden entries) with its size."""
    out = Path(out)
    files = [str(p.relative_to(out)) for p in sorted(out.rglob("*")) if p.is_file() and p.name != MARKER
             and not any(part in skip or part.startswith(".") for part in p.relative_to(out).parts)]
    fault_point("finalize_before_marker")
    write_marker(out, files=files)
