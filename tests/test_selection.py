"""Learning-rate grid and seed summary: the grid picks by the selection metric only."""

from __future__ import annotations

import math

import pytest

from nlp_ssl.selection import aggregate, best_learning_rate, reusable_run, run_grid


def _metrics(sel: float, rep: float) -> dict:
    return {"eval": {"selection": {"accuracy": sel}, "report": {"accuracy": rep}}}


def test_grid_picks_by_the_selection_split_even_when_the_report_split_disagrees():
    # rate 1e-4 is best on the report split, 3e-4 on the selection split: the grid must not look at report
    table = {(1e-4, 1): _metrics(0.70, 0.90), (3e-4, 1): _metrics(0.80, 0.60),
             (3e-4, 2): _metrics(0.78, 0.62), (3e-4, 3): _metrics(0.82, 0.64)}
    calls = []

    def run(lr, seed):
        calls.append((lr, seed))
        return table[(lr, seed)]

    result = run_grid([1e-4, 3e-4], [1, 2, 3], run, score=lambda m: m["eval"]["selection"]["accuracy"])
    assert result.best_learning_rate == 3e-4
    assert result.scores == {1e-4: 0.70, 3e-4: 0.80}
    assert calls == [(1e-4, 1), (3e-4, 1), (3e-4, 2), (3e-4, 3)]  # the best rate's first-seed run is reused
    summary = aggregate(result.runs)
    assert summary["report"]["accuracy"]["mean"] == pytest.approx(0.62)
    assert summary["report"]["accuracy"]["std"] == pytest.approx(0.02)
    assert summary["report"]["accuracy"]["n"] == 3


def test_best_learning_rate_nan_loses_and_ties_keep_the_first():
    assert best_learning_rate({1e-4: math.nan, 3e-4: 0.5}) == 3e-4
    assert best_learning_rate({1e-4: 0.5, 3e-4: 0.5}) == 1e-4


def test_aggregate_one_run_has_zero_std():
    assert aggregate([_metrics(0.5, 0.25)])["report"]["accuracy"] == {"mean": 0.25, "std": 0.0, "n": 1}


def test_reusable_run_only_for_the_same_key(tmp_path):
    (tmp_path / "metrics.json").write_text('{"run_key": "abc", "eval": {}}')
    assert reusable_run(tmp_path, "abc") == {"run_key": "abc", "eval": {}}
    assert reusable_run(tmp_path, "other") is None
    assert reusable_run(tmp_path / "missing", "abc") is None


def test_grid_extension_is_scored_like_the_grid():
    table = {1e-4: _metrics(0.6, 0.0), 3e-4: _metrics(0.7, 0.0), 1e-3: _metrics(0.75, 0.0)}
    result = run_grid([1e-4, 3e-4], [1], lambda lr, seed: table[lr], score=lambda m: m["eval"]["selection"]["accuracy"],
                      extend=lambda scores: 1e-3 if max(scores, key=scores.get) == 3e-4 else None)
    assert result.best_learning_rate == 1e-3 and set(result.scores) == {1e-4, 3e-4, 1e-3}
