"""benchmarks/pretrain_spread.py: the spread over pretraining runs and over fine-tuning seeds, computed by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def spread(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    sys.modules.pop("pretrain_spread", None)
    import pretrain_spread

    return pretrain_spread


def test_spread_over_pretraining_runs_and_finetune_seeds(spread):
    encoders = {"tokens-seed1": {"budget": "tokens"}, "tokens-seed2": {"budget": "tokens"},
                "time-seed1": {"budget": "time"}, "time-seed2": {"budget": "time"}}
    scores = {"t": {"scratch": [50.0, 52.0, 54.0],            # mean 52, std 2
                    "tokens-seed1": [60.0, 62.0, 64.0],       # run mean 62, within-run std 2
                    "tokens-seed2": [66.0, 66.0, 66.0],       # run mean 66, within-run std 0
                    "time-seed1": [50.0, 54.0, 58.0],         # run mean 54, within-run std 4
                    "time-seed2": [54.0, 54.0, 54.0]}}        # run mean 54
    s = spread.summarize(encoders, scores)["t"]
    assert s["scratch"]["mean"] == 52 and s["scratch"]["std_over_finetune_seeds"] == 2
    tok = s["tokens"]
    assert tok["mean"] == 64 and tok["std_over_pretraining_runs"] == pytest.approx(2 ** 0.5 * 2)  # stdev(62, 66)
    assert tok["std_over_finetune_seeds_within_run"] == 1  # mean of 2 and 0
    assert tok["minus_scratch"] == 12 and tok["spread_bar"] == pytest.approx(2 * 2 * 2 ** 0.5)
    assert tok["exceeds_spread"] is True  # 12 > 5.66
    tim = s["time"]
    assert tim["mean"] == 54 and tim["std_over_pretraining_runs"] == 0 and tim["minus_scratch"] == 2
    assert tim["spread_bar"] == 4 and tim["exceeds_spread"] is False  # 2 < 2 x scratch's std 2
    assert s["tokens_minus_time"]["difference"] == 10 and s["tokens_minus_time"]["exceeds_spread"] is True


def test_spread_bar_counts_finetune_seeds_of_the_pretrained_side(spread):
    """Pretraining runs whose means agree (std 0) still vary by fine-tuning seed (std 4): a 1-point difference
    from scratch is within that, whatever the spread of the run means."""
    encoders = {"time-seed1": {"budget": "time"}, "time-seed2": {"budget": "time"}}
    scores = {"t": {"scratch": [55.0, 55.0, 55.0], "time-seed1": [50.0, 54.0, 58.0], "time-seed2": [50.0, 54.0, 58.0]}}
    tim = spread.summarize(encoders, scores)["t"]["time"]
    assert tim["std_over_pretraining_runs"] == 0 and tim["std_over_finetune_seeds_within_run"] == 4
    assert tim["minus_scratch"] == -1 and tim["spread_bar"] == 8 and tim["exceeds_spread"] is False


def test_report_scores_reads_the_reported_split(spread):
    m = {"report_split": "test", "selection": {"metric": "accuracy"},
         "runs": [{"eval": {"test": {"accuracy": 0.5}, "dev": {"accuracy": 0.9}}},
                  {"eval": {"test": {"accuracy": 0.75}, "dev": {"accuracy": 0.1}}}]}
    assert spread.report_scores(m) == [50.0, 75.0]


def test_every_command_runs_with_the_chosen_threads(spread, monkeypatch, tmp_path):
    """Fine-tuning has no thread setting, so the environment pins it: the figures ran at --threads, whatever the
    caller's environment or the machine's core count."""
    seen = []
    monkeypatch.setattr(spread.subprocess, "run", lambda cmd, **kw: seen.append(kw["env"]))
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    with open(tmp_path / "log.txt", "w") as log:
        spread.nlp_ssl("finetune", "c.yaml", log=log, threads=1)
    assert seen[0]["OMP_NUM_THREADS"] == "1"


def test_a_finished_encoder_of_other_data_or_threads_is_not_reused(spread, tmp_path):
    from nlp_ssl.checkpoints import mark_finished

    enc = tmp_path / "tokens-seed1"
    enc.mkdir()
    (enc / "config.yaml").write_text("data: runs/data/a\ntokenizer: runs/tok\nimpl:\n  num_threads: 1\n"
                                     "train:\n  seed: 1\n  per_device_train_batch_size: 16\n")
    length = {"unit": "max_tokens", "value": 100, "machine_speed_dependent": False}
    (enc / "metrics.json").write_text(json.dumps({"provenance": {"run_length": length}}))
    mark_finished(enc)
    assert spread.finished_encoder(enc, 1, 16, length, "runs/data/a", "runs/tok", 1)
    assert not spread.finished_encoder(enc, 1, 16, length, "runs/data/b", "runs/tok", 1)
    assert not spread.finished_encoder(enc, 1, 16, length, "runs/data/a", "runs/tok2", 1)
    assert not spread.finished_encoder(enc, 1, 16, length, "runs/data/a", "runs/tok", 2)
    assert not spread.finished_encoder(enc, 2, 16, length, "runs/data/a", "runs/tok", 1)
