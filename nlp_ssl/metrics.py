"""Task metrics computed offline with scikit-learn and scipy (the GLUE definitions).

The `evaluate` library loads its metric scripts from the Hub (which fails offline) and costs seconds to
import; these functions compute the same quantities directly, and `nlp_ssl.evaluate_metrics` ships them as
`evaluate` modules that load offline (`evaluate.load`, `evaluate.combine`, `evaluator`, bootstrap intervals). Names follow the GLUE leaderboard:
accuracy, f1 (binary, positive class 1), macro_f1, matthews_correlation, pearson, spearmanr.

Example:
    >>> compute_metrics(["accuracy", "f1"], [1, 0, 1, 1], [1, 0, 0, 1])
    {'accuracy': 0.75, 'f1': 0.8}
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def accuracy(preds: np.ndarray, labels: np.ndarray) -> float:
    return float((preds == labels).mean())


def f1(preds: np.ndarray, labels: np.ndarray) -> float:
    """Binary F1 of class 1 (MRPC, QQP)."""
    from sklearn.metrics import f1_score

    return float(f1_score(labels, preds, pos_label=1, average="binary", zero_division=0))


def macro_f1(preds: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, preds, average="macro", zero_division=0))


def matthews_correlation(preds: np.ndarray, labels: np.ndarray) -> float:
    """Matthews correlation coefficient (CoLA); 0 when a prediction or label column is constant."""
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(labels, preds))


def _constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


def pearson(preds: np.ndarray, labels: np.ndarray) -> float:
    """Pearson correlation (STS-B); NaN when either side is constant (the correlation is undefined)."""
    from scipy.stats import pearsonr

    if _constant(preds) or _constant(labels):
        return float("nan")
    return float(pearsonr(preds, labels)[0])


def spearmanr(preds: np.ndarray, labels: np.ndarray) -> float:
    """Spearman rank correlation (STS-B); NaN when either side is constant."""
    from scipy.stats import spearmanr as _spearmanr

    if _constant(preds) or _constant(labels):
        return float("nan")
    return float(_spearmanr(preds, labels)[0])


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy, "f1": f1, "macro_f1": macro_f1, "matthews_correlation": matthews_correlation,
    "pearson": pearson, "spearmanr": spearmanr,
}
REGRESSION_METRICS = ("pearson", "spearmanr")


def compute_metrics(names: Sequence[str], preds: Sequence, labels: Sequence) -> dict[str, float]:
    """Each named metric of predictions against labels (class ids, or real values for regression)."""
    preds, labels = np.asarray(preds), np.asarray(labels)
    if preds.shape != labels.shape:
        raise ValueError(f"{len(preds)} predictions for {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("no examples to score")
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {sorted(METRICS)}")
    return {name: METRICS[name](preds, labels) for name in names}
