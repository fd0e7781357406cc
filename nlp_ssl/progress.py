"""Progress you can trust: bars on a terminal, one line per log elsewhere, and estimates that follow the run's
own unit (a wall-clock budget, or steps).

Why this exists: the Trainer's progress bar counts steps, and a time-budgeted run has no step count (it is
given 10**9 steps and stopped at the deadline), so its bar showed 1,000,000,000 steps and an estimate of tens of
thousands of hours. Under a budget, progress here is elapsed / budget and the time left is budget - elapsed;
a step-limited run shows its steps, with the time left from this session's step rate. On a terminal the bars
are tqdm's (shown whatever TQDM_DISABLE says: the terminal check decides); when output is not a terminal (CI logs, a file) nothing redraws: one plain line per log.

`NLP_SSL_PROGRESS=bars` or `=lines` overrides the terminal check (e.g. `lines` under a terminal multiplexer
that records output).

Example:
    >>> budget_estimate(elapsed=90.0, budget=600.0)
    (0.15, 510.0)
    >>> format_duration(3725)
    '1:02:05'
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, TextIO

ENV = "NLP_SSL_PROGRESS"


def interactive(stream: TextIO | None = None) -> bool:
    """Whether progress is drawn as bars: `stream` (default stderr, where bars go) is a terminal, unless
    NLP_SSL_PROGRESS says `bars` or `lines`."""
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in ("bars", "lines"):
        return forced == "bars"
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def quiet_library_bars() -> None:
    """Outside a terminal, switch off the progress bars of datasets and huggingface_hub (their redraws fill a log
    file with carriage returns). Environment variables, so nothing heavy is imported; an explicit setting wins."""
    if not interactive():
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def format_duration(seconds: float | None) -> str:
    """`m:ss` or `h:mm:ss` (`?` when unknown)."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(max(0.0, seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_count(n: float) -> str:
    """A count for people: 950, 12.3k, 2.79M, 1.2B."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


def budget_estimate(elapsed: float, budget: float) -> tuple[float, float]:
    """(share of the budget used in [0, 1], seconds left) of a wall-clock budget: the run stops at the deadline,
    so the time left is known exactly (whatever the step rate)."""
    return min(1.0, elapsed / budget), max(0.0, budget - elapsed)


def steps_estimate(step: int, max_steps: int, elapsed: float, first_step: int = 0) -> tuple[float, float | None]:
    """(share of the steps done, seconds left at this session's rate; None before the first step of the session).
    `first_step` is where the session started (a resumed run's steps before it took no time here)."""
    share = min(1.0, step / max_steps) if max_steps > 0 else 0.0
    done = step - first_step
    if done <= 0 or elapsed <= 0:
        return share, None
    return share, elapsed / done * max(0, max_steps - step)


def status_line(step: int, elapsed: float, *, budget: float | None = None, max_steps: int | None = None,
                first_step: int = 0, tokens: int | None = None, loss: float | None = None,
                extra: dict[str, Any] | None = None) -> str:
    """One line of run status: under a budget `elapsed / budget (share), left`; else `step / max_steps (share),
    left`; then tokens seen, the current loss and any `extra` values.

    Example:
        >>> status_line(340, 190.0, budget=1500.0, tokens=2_785_280, loss=5.1234)
        'step 340 | 3:10 / 25:00 (12.7%), 21:50 left | 2.79M tokens | loss 5.123'
    """
    if budget is not None:
        share, left = budget_estimate(elapsed, budget)
        parts = [f"step {step}", f"{format_duration(elapsed)} / {format_duration(budget)} ({share:.1%}), "
                                 f"{format_duration(left)} left"]
    elif max_steps:
        share, left = steps_estimate(step, max_steps, elapsed, first_step)
        parts = [f"step {step}/{max_steps} ({share:.1%})", f"{format_duration(elapsed)} elapsed, "
                                                           f"{format_duration(left)} left"]
    else:
        parts = [f"step {step}", f"{format_duration(elapsed)} elapsed"]
    if tokens is not None:
        parts.append(f"{format_count(tokens)} tokens")
    if loss is not None:
        parts.append(f"loss {loss:.4g}")
    for key, value in (extra or {}).items():
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " | ".join(parts)


class LineProgress:
    """A stand-in for a tqdm bar outside a terminal: `update` counts, and a plain line is printed at most every
    `every` seconds (and at `close`), so a log file gets a few lines instead of redraws."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it", every: float = 60.0,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.stream, self.clock = stream, clock
        self.n = 0
        self.start = self.last = clock()

    def _line(self) -> str:
        elapsed = self.clock() - self.start
        of = f"/{self.total:,}" if self.total else ""
        return f"{self.desc}: {self.n:,}{of} {self.unit} ({format_duration(elapsed)} elapsed)"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            print(self._line(), file=self.stream or sys.stderr, flush=True)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:  # tqdm's API; nothing to redraw here
        pass

    def write(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        if self.n and self.clock() - self.start >= self.every:  # a short loop needs no closing line
            print(self._line() + ", done", file=self.stream or sys.stderr, flush=True)

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it", stream: TextIO | None = None,
                 enabled: bool = True, every: float = 60.0):
    """A tqdm bar on a terminal; elsewhere a `LineProgress` (a line at most every `every` seconds); with
    `enabled=False` a silent one. Use as a context manager or call `update` / `close`."""
    if enabled and interactive(stream):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True, mininterval=0.5, disable=False)
    return LineProgress(total, desc, unit, every=every if enabled else float("inf"), stream=stream)


class _Text:
    """Status text shown after a tqdm bar as it is: tqdm prefixes a string postfix with ", " but shows any other
    object through str() unchanged."""

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text


def run_progress_callback(budget=None, tokens_per_step: int | None = None, stream: TextIO | None = None,
                          clock: Callable[[], float] = time.monotonic):
    """A TrainerCallback that shows a training run's progress in its own unit.

    Args:
        budget: the run's `training.TimeBudget` callback (its `seconds` and `elapsed()`, which includes the time a
            resumed run had trained before), or None for a run limited by steps (or epochs: the Trainer turns
            them into steps).
        tokens_per_step: tokens per optimizer step (global batch x block size), for `tokens seen`; None: not shown.
        stream: where bars and lines go (default stderr).
        clock: seconds (tests pass a fake clock); a budget's elapsed time is the budget's own.

    On a terminal: a bar of the budget's seconds (or of the steps) whose text is `status_line`, each log written
    above it as one line, and a bar per evaluation. Elsewhere: one `status_line` per log (and per evaluation), no
    bars. Only the main process shows anything.
    """
    from transformers import TrainerCallback

    class RunProgress(TrainerCallback):
        def __init__(self):
            self.bar = self.eval_bar = None
            self.start = None
            self.first_step = 0
            self.loss = None
            self.tty = interactive(stream)

        # -- state ------------------------------------------------------------------------------------
        def elapsed(self) -> float:
            if budget is not None:
                return budget.elapsed()
            return clock() - self.start if self.start is not None else 0.0

        def line(self, state, extra: dict | None = None) -> str:
            step = state.global_step
            return status_line(step, self.elapsed(), budget=budget.seconds if budget is not None else None,
                               max_steps=None if budget is not None else state.max_steps, first_step=self.first_step,
                               tokens=step * tokens_per_step if tokens_per_step else None, loss=self.loss, extra=extra)

        def _out(self, text: str) -> None:
            if self.bar is not None:
                self.bar.write(text, file=stream)
            else:
                print(text, file=stream or sys.stderr, flush=True)

        # -- training ---------------------------------------------------------------------------------
        def on_train_begin(self, args, state, control, **kw):
            self.start, self.first_step = clock(), state.global_step
            if not (state.is_world_process_zero and self.tty):
                return
            from tqdm.auto import tqdm

            fmt = "{l_bar}{bar}| {postfix}"  # the status text (`_Text`) after the bar
            first = _Text(self.line(state))
            if budget is not None:  # the bar counts the budget's seconds
                self.bar = tqdm(total=round(budget.seconds), initial=min(round(budget.elapsed()), round(budget.seconds)),
                                unit="s", bar_format=fmt, file=stream, dynamic_ncols=True, desc="train", mininterval=0.5,
                                disable=False, postfix=first)
            else:
                self.bar = tqdm(total=state.max_steps, initial=state.global_step, unit="step", bar_format=fmt,
                                file=stream, dynamic_ncols=True, desc="train", mininterval=0.5, disable=False,
                                postfix=first)

        def on_step_end(self, args, state, control, **kw):
            if self.bar is None:
                return
            target = min(round(self.elapsed()), self.bar.total) if budget is not None else state.global_step
            self.bar.postfix = _Text(self.line(state))
            self.bar.update(max(0, target - self.bar.n))

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs:
                return
            if "loss" in logs:
                self.loss = float(logs["loss"])
            shown = {k: v for k, v in logs.items()
                     if k not in ("loss", "total_flos", "epoch") and isinstance(v, (int, float, str))}
            self._out(self.line(state, shown))

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.postfix = _Text(self.line(state))
                self.bar.refresh()
                self.bar.close()
                self.bar = None

        # -- evaluation (during training, or trainer.evaluate/predict) ---------------------------------
        def on_prediction_step(self, args, state, control, eval_dataloader=None, **kw):
            if not (state.is_world_process_zero and self.tty):
                return
            try:
                total = len(eval_dataloader)
            except TypeError:
                total = None
            if self.eval_bar is None:
                from tqdm.auto import tqdm

                self.eval_bar = tqdm(total=total, desc="evaluate", leave=False, file=stream, dynamic_ncols=True,
                                     disable=False)
            self.eval_bar.update(1)

        def _close_eval(self):
            if self.eval_bar is not None:
                self.eval_bar.close()
                self.eval_bar = None

        def on_evaluate(self, args, state, control, **kw):
            self._close_eval()

        def on_predict(self, args, state, control, **kw):
            self._close_eval()

    return RunProgress()


def use_run_progress(trainer, budget=None, tokens_per_step: int | None = None, stream: TextIO | None = None):
    """Replace the Trainer's own progress display (its step bar, or its printer of log dicts) with
    `run_progress_callback`; returns the callback."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cls in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(cls)
    try:
        from transformers.utils.notebook import NotebookProgressCallback

        trainer.remove_callback(NotebookProgressCallback)
    except ImportError:  # no notebook support installed
        pass
    callback = run_progress_callback(budget, tokens_per_step, stream)
    trainer.add_callback(callback)
    return callback
