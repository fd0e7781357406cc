"""Each metric against values computed by hand (the GLUE definitions)."""

from __future__ import annotations

import math

import pytest

from nlp_ssl.metrics import compute_metrics

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
