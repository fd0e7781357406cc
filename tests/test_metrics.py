"""Each metric against values computed by hand (the GLUE definitions)."""

from __future__ import annotations

import math

import pytest

import numpy as np

from nlp_ssl.metrics import bootstrap, bootstrap_difference, bootstrap_mean, bootstrap_metric, compute_metrics

# TP = 3 (positions 0, 3, 5), FP = 1 (2), FN = 1 (4), TN = 1 (1)
PREDS = [1, 0, 1, 1, 0, 1]
GOLD = [1, 0, 0, 1, 1, 1]


def test_classification_metrics_by_hand():
    m = compute_metrics(["accuracy", "f1", "macro_f1", "matthews_correlation"], PREDS, GOLD)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["f1"] == pytest.approx(0.75)  # precision 3/4, recall 3/4
    assert m["macro_f1"] == pytest.approx((0.75 + 0.5) / 2)  # class 0: TP 1, FP 1, FN 1 -> 0.5
    # (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (3 - 1) / sqrt(4 * 4 * 2 * 2)
    assert m["matthews_correlation"] == pytest.approx(0.25)


def test_correlations_by_hand():
    # x = 1, 2, 3; y = 1, 2, 4: sum dx*dy = 3, sum dx^2 = 2, sum dy^2 = 42/9
    m = compute_metrics(["pearson", "spearmanr"], [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert m["pearson"] == pytest.approx(3 / math.sqrt(2 * 42 / 9))
    assert m["spearmanr"] == pytest.approx(1.0)
    # ranks 1, 2, 3 vs 3, 1, 2: sum d^2 = 6, rho = 1 - 6 * 6 / (3 * (9 - 1)) = -0.5
    assert compute_metrics(["spearmanr"], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0])["spearmanr"] == pytest.approx(-0.5)


def test_degenerate_inputs():
    assert math.isnan(compute_metrics(["pearson"], [1.0, 1.0, 1.0], [1.0, 2.0, 3.0])["pearson"])
    assert compute_metrics(["matthews_correlation"], [1, 1, 1], [0, 1, 1])["matthews_correlation"] == 0.0
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        compute_metrics(["accuracy"], [1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="unknown metric"):
        compute_metrics(["bleu"], [1], [1])


# ----------------------------------------------------------------------------------------------------------
# Bootstrap intervals


def test_bootstrap_interval_by_hand():
    """Value on all examples, then one statistic per resample; the interval is the linear-interpolated quantiles
    of the resamples' statistics, NaN resamples left out and counted."""
    values = iter([10.0, 1.0, 2.0, float("nan"), 3.0, 4.0, 5.0])
    b = bootstrap(lambda i: next(values), n=3, n_resamples=6, confidence_level=0.5)
    # resamples 1, 2, 3, 4, 5 (NaN dropped): 25% quantile 2.0, 75% quantile 4.0; std (ddof 1) sqrt(2.5)
    assert (b.value, b.interval, b.undefined, b.n_resamples) == (10.0, (2.0, 4.0), 1, 6)
    assert b.standard_error == pytest.approx(math.sqrt(2.5))


def test_bootstrap_resamples_examples_with_the_seeded_generator():
    seen = []
    bootstrap(lambda i: seen.append(i.copy()) or 0.0, n=5, n_resamples=3, seed=7)
    rng = np.random.default_rng(7)
    expected = [np.arange(5)] + [rng.integers(0, 5, size=5) for _ in range(3)]
    assert len(seen) == 4 and all((a == e).all() for a, e in zip(seen, expected))


def test_bootstrap_constant_scores_give_a_zero_width_interval():
    b = bootstrap_mean([0.5] * 20, n_resamples=50)
    assert (b.value, b.interval, b.standard_error) == (0.5, (0.5, 0.5), 0.0)
    assert bootstrap_metric("accuracy", [1, 0, 1], [1, 0, 1], n_resamples=50).interval == (1.0, 1.0)
    same = [1, 0, 0, 1, 1]  # a model against itself: every paired resample differs by exactly 0
    assert bootstrap_difference("accuracy", [same], [same], [1, 0, 1, 1, 0], n_resamples=50).interval == (0.0, 0.0)


def test_bootstrap_a_seed_reproduces_and_the_interval_is_about_the_binomial_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    preds = np.where(np.arange(400) < 280, labels, 1 - labels)  # 70% right
    a = bootstrap_metric("accuracy", preds, labels, n_resamples=300, seed=3)
    assert a == bootstrap_metric("accuracy", preds, labels, n_resamples=300, seed=3)
    assert a != bootstrap_metric("accuracy", preds, labels, n_resamples=300, seed=4)
    assert a.value == 0.7 and a.low < 0.7 < a.high
    # the binomial standard error sqrt(0.7 * 0.3 / 400) is 0.0229; the 95% interval about +-1.96 of it
    assert 0.018 < a.standard_error < 0.028 and 0.07 < a.high - a.low < 0.11


def test_bootstrap_difference_is_paired():
    """A is right on 10 more of 100 examples than B and the same elsewhere: the paired difference varies only with
    how many of those 10 a resample draws, so its interval is narrower than two unpaired intervals would be."""
    labels = np.zeros(100, int)
    b_preds = np.where(np.arange(100) < 60, 0, 1)  # 60% right
    a_preds = np.where(np.arange(100) < 70, 0, 1)  # the same 60 right, and 10 more
    d = bootstrap_difference("accuracy", [a_preds, a_preds], [b_preds], labels, n_resamples=500, seed=1)
    assert d.value == pytest.approx(0.1) and 0.04 < d.low < 0.1 < d.high < 0.17
    single = bootstrap_metric("accuracy", a_preds, labels, n_resamples=500, seed=1)
    assert d.high - d.low < single.high - single.low


def test_bootstrap_refuses_what_it_cannot_resample():
    with pytest.raises(ValueError, match="no examples"):
        bootstrap_mean([])
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        bootstrap_metric("accuracy", [1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="same evaluation examples"):
        bootstrap_difference("accuracy", [[1, 0]], [[1]], [1, 0])
    with pytest.raises(ValueError, match="confidence_level"):
        bootstrap_mean([1.0], confidence_level=95)
