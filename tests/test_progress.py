"""Progress: estimates in the run's own unit (a time budget, or steps), bars on a terminal only, one line per log
elsewhere. Fake clocks and fake streams: nothing here trains."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from nlp_ssl.progress import (LineProgress, budget_estimate, format_count, format_duration, interactive, progress_bar,
                              run_progress_callback, status_line, steps_estimate)


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeBudget:
    """The part of training.TimeBudget the progress reads: its seconds and the elapsed training time."""

    def __init__(self, seconds: float, clock: Clock, before: float = 0.0):
        self.seconds, self.clock, self.before, self.start = seconds, clock, before, clock()

    def elapsed(self) -> float:
        return self.before + self.clock() - self.start


def state(step: int, max_steps: int = 10**9):
    return SimpleNamespace(global_step=step, max_steps=max_steps, is_world_process_zero=True)


@pytest.fixture(autouse=True)
def no_forcing(monkeypatch):
    monkeypatch.delenv("NLP_SSL_PROGRESS", raising=False)


def test_formatting():
    assert [format_duration(s) for s in (0, 59.6, 61, 3725, None)] == ["0:00", "1:00", "1:01", "1:02:05", "?"]
    assert [format_count(n) for n in (950, 12_345, 2_785_280, 1.2e9)] == ["950", "12.3k", "2.79M", "1.2B"]


def test_budget_estimate_is_elapsed_over_budget_whatever_the_step_count():
    assert budget_estimate(90.0, 600.0) == (0.15, 510.0)
    assert budget_estimate(700.0, 600.0) == (1.0, 0.0)  # past the deadline (the final save): nothing left
    # the trainer's step count under a budget is 10**9: the line must not use it
    line = status_line(340, 190.0, budget=1500.0, max_steps=10**9, tokens=340 * 8192, loss=5.1234)
    assert line == "step 340 | 3:10 / 25:00 (12.7%), 21:50 left | 2.79M tokens | loss 5.123"
    assert "1000000000" not in line and "10**9" not in line


def test_steps_estimate_uses_this_sessions_rate():
    assert steps_estimate(0, 100, 0.0) == (0.0, None)  # no step yet: no estimate
    assert steps_estimate(25, 100, 50.0) == (0.25, 150.0)  # 2 s per step, 75 to go
    # resumed at step 50: 10 steps in 20 s this session -> 2 s per step, 40 to go
    assert steps_estimate(60, 100, 20.0, first_step=50) == (0.6, 80.0)
    assert status_line(25, 50.0, max_steps=100) == "step 25/100 (25.0%) | 0:50 elapsed, 2:30 left"


def test_interactive_follows_the_stream_and_the_override(monkeypatch):
    assert interactive(Tty()) and not interactive(io.StringIO())
    monkeypatch.setenv("NLP_SSL_PROGRESS", "lines")
    assert not interactive(Tty())
    monkeypatch.setenv("NLP_SSL_PROGRESS", "bars")
    assert interactive(io.StringIO())


def test_budgeted_run_off_a_terminal_prints_one_plain_line_per_log():
    clock = Clock()
    budget = FakeBudget(1500.0, clock)
    out = io.StringIO()
    cb = run_progress_callback(budget, tokens_per_step=8192, stream=out, clock=clock)
    args, control = SimpleNamespace(), SimpleNamespace()
    cb.on_train_begin(args, state(0), control)
    for step in range(1, 341):
        clock.t += 190.0 / 340
        cb.on_step_end(args, state(step), control)
        if step % 170 == 0:
            cb.on_log(args, state(step), control, logs={"loss": 5.1234, "learning_rate": 0.001, "epoch": 0.5})
    cb.on_log(args, state(340), control, logs={"eval_loss": 4.9, "eval_mlm_accuracy": 0.21})
    cb.on_train_end(args, state(340), control)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in out.getvalue()  # one line per log, no bar redraws
    assert lines[1] == ("step 340 | 3:10 / 25:00 (12.7%), 21:50 left | 2.79M tokens | loss 5.123 | "
                        "learning_rate 0.001")
    assert lines[2].endswith("| loss 5.123 | eval_loss 4.9 | eval_mlm_accuracy 0.21")


def test_budgeted_run_on_a_terminal_draws_a_bar_of_the_budget_and_resumes_at_its_elapsed_time():
    clock = Clock()
    budget = FakeBudget(600.0, clock, before=120.0)  # resumed after 2 of its 10 minutes
    out = Tty()
    cb = run_progress_callback(budget, tokens_per_step=100, stream=out, clock=clock)
    args, control = SimpleNamespace(), SimpleNamespace()
    cb.on_train_begin(args, state(50), control)
    assert (cb.bar.total, cb.bar.n) == (600, 120)  # seconds of the budget, not 10**9 steps
    clock.t += 60
    cb.on_step_end(args, state(60), control)
    assert cb.bar.n == 180
    cb.on_log(args, state(60), control, logs={"loss": 3.0})
    cb.on_train_end(args, state(60), control)
    text = out.getvalue()
    assert "3:00 / 10:00 (30.0%), 7:00 left" in text and "1000000000" not in text
    assert "\r" in text  # a bar that redraws


def test_step_limited_run_shows_its_steps_on_a_terminal():
    clock = Clock()
    out = Tty()
    cb = run_progress_callback(None, stream=out, clock=clock)
    args, control = SimpleNamespace(), SimpleNamespace()
    cb.on_train_begin(args, state(0, max_steps=300), control)
    assert cb.bar.total == 300
    clock.t += 20
    cb.on_step_end(args, state(10, max_steps=300), control)
    assert cb.bar.n == 10
    cb.on_log(args, state(10, max_steps=300), control, logs={"loss": 7.0})
    assert "step 10/300 (3.3%) | 0:20 elapsed, 9:40 left | loss 7" in out.getvalue()
    cb.on_train_end(args, state(10, max_steps=300), control)


def test_evaluation_shows_a_bar_on_a_terminal_only():
    args, control, loader = SimpleNamespace(), SimpleNamespace(), [0] * 4
    tty, plain = Tty(), io.StringIO()
    for stream in (tty, plain):
        cb = run_progress_callback(None, stream=stream, clock=Clock())
        for _ in range(4):
            cb.on_prediction_step(args, state(0), control, eval_dataloader=loader)
        if stream is tty:
            assert (cb.eval_bar.total, cb.eval_bar.n) == (4, 4)  # batches of the evaluation
        else:
            assert cb.eval_bar is None
        cb.on_evaluate(args, state(0), control)
        assert cb.eval_bar is None  # closed when the evaluation ends
    assert "evaluate:   0%" in tty.getvalue()
    assert plain.getvalue() == ""


def test_only_the_main_process_shows_progress():
    out = io.StringIO()
    cb = run_progress_callback(None, stream=out, clock=Clock())
    other = SimpleNamespace(global_step=1, max_steps=10, is_world_process_zero=False)
    cb.on_train_begin(None, other, None)
    cb.on_log(None, other, None, logs={"loss": 1.0})
    assert out.getvalue() == ""


def test_progress_bar_off_a_terminal_prints_a_line_at_most_every_interval():
    clock = Clock()
    out = io.StringIO()
    bar = LineProgress(total=1000, desc="prepare", unit="doc", every=60.0, stream=out, clock=clock)
    for _ in range(10):
        clock.t += 15
        bar.update(100)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines == ["prepare: 400/1,000 doc (1:00 elapsed)", "prepare: 800/1,000 doc (2:00 elapsed)",
                     "prepare: 1,000/1,000 doc (2:30 elapsed), done"]
    assert type(progress_bar(10, stream=io.StringIO())).__name__ == "LineProgress"
    assert type(progress_bar(10, stream=Tty())).__name__ != "LineProgress"  # tqdm on a terminal


def test_prediction_loop_shows_a_bar_on_a_terminal_and_nothing_in_a_short_log(tiny_tokenizer_dir, monkeypatch, capsys):
    import torch
    import transformers as tf
    from datasets import Dataset

    from nlp_ssl.tasks.inference import PadCollator, predict
    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(tiny_tokenizer_dir)
    torch.manual_seed(0)
    model = tf.BertForSequenceClassification(tf.BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                                                           num_attention_heads=2, intermediate_size=32, num_labels=2))
    enc = tok([f"text number {i}" for i in range(10)])
    ds = Dataset.from_dict({**enc, "length": [len(x) for x in enc["input_ids"]]})
    monkeypatch.setenv("NLP_SSL_PROGRESS", "bars")
    bars, _ = predict(model, ds, PadCollator(tok), batch_size=4)
    err = capsys.readouterr().err
    assert "predict: 100%" in err and "3/3" in err  # three batches of up to 4
    monkeypatch.setenv("NLP_SSL_PROGRESS", "lines")
    lines, _ = predict(model, ds, PadCollator(tok), batch_size=4)
    assert capsys.readouterr().err == ""  # a loop shorter than a minute leaves no line in a log
    assert (bars["logits"] == lines["logits"]).all()


def test_off_a_terminal_the_library_bars_are_switched_off_unless_set(monkeypatch):
    from nlp_ssl.progress import quiet_library_bars

    for name in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NLP_SSL_PROGRESS", "bars")
    quiet_library_bars()
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in __import__("os").environ
    monkeypatch.setenv("NLP_SSL_PROGRESS", "lines")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")  # the user's own setting wins
    quiet_library_bars()
    import os

    assert os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1" and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"
