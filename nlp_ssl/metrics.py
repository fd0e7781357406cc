"""Task metrics computed offline with scikit-learn and scipy (the GLUE definitions), and bootstrap confidence
intervals over evaluation examples.

The `evaluate` library loads its metric scripts from the Hub (which fails offline) and costs seconds to
import; these functions compute the same quantities directly, and `nlp_ssl.evaluate_metrics` ships them as
`evaluate` modules that load offline (`evaluate.load`, `evaluate.combine`, `evaluator`). Names follow the GLUE
leaderboard: accuracy, f1 (binary, positive class 1), macro_f1, matthews_correlation, pearson, spearmanr.

`bootstrap` is a percentile bootstrap over examples with an explicit numpy generator: the same seed gives the same
interval, and any statistic of a set of examples works (a metric, a paired difference of two models' scores, the mean
of per-question QA scores). `bootstrap_metric`, `bootstrap_difference` and `bootstrap_mean` are its usual forms.

Example:
    >>> compute_metrics(["accuracy", "f1"], [1, 0, 1, 1], [1, 0, 0, 1])
    {'accuracy': 0.75, 'f1': 0.8}
    >>> bootstrap_mean([1.0, 1.0, 1.0], n_resamples=50).interval  # every resample has the same mean
    (1.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
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


# ----------------------------------------------------------------------------------------------------------
# Bootstrap confidence intervals


@dataclass(frozen=True)
class Bootstrap:
    """A statistic of a set of evaluation examples and its percentile bootstrap interval.

    Attributes:
        value: the statistic on all examples.
        low, high: the interval's ends: the (1 - confidence_level) / 2 and (1 + confidence_level) / 2 quantiles
            of the statistic over the resamples (numpy's linear interpolation); NaN when no resample gave a number.
        standard_error: the standard deviation of the statistic over the resamples (ddof 1).
        n_resamples: resamples drawn; undefined: how many of them gave NaN (a correlation on a resample whose
            predictions are all equal) and were left out of the interval.
        confidence_level: e.g. 0.95.
    """

    value: float
    low: float
    high: float
    standard_error: float
    n_resamples: int
    confidence_level: float
    undefined: int = 0

    @property
    def interval(self) -> tuple[float, float]:
        return self.low, self.high


def bootstrap(statistic: Callable[[np.ndarray], float], n: int, n_resamples: int = 1000,
              confidence_level: float = 0.95, seed: int = 0) -> Bootstrap:
    """Percentile bootstrap over `n` examples.

    `statistic(indices)` computes the figure on the examples at `indices` (an int array; repeats allowed). It is
    computed once on `arange(n)` (the value) and once on each of `n_resamples` samples of `n` indices drawn with
    replacement by `numpy.random.default_rng(seed)`, one sample after the other, so a seed reproduces the interval
    exactly. A paired comparison passes one statistic that scores every model on the same indices.

    Example:
        >>> correct = np.array([1, 1, 0, 1])
        >>> b = bootstrap(lambda i: correct[i].mean(), 4, n_resamples=200, seed=1)
        >>> b.value, 0 <= b.low <= b.value <= b.high <= 1
        (0.75, True)
    """
    if n < 1:
        raise ValueError("no examples to resample")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, not {n_resamples}")
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level must lie between 0 and 1, not {confidence_level}")
    rng = np.random.default_rng(seed)
    value = float(statistic(np.arange(n)))
    stats = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(n_resamples)], dtype=float)
    finite = stats[~np.isnan(stats)]
    if finite.size == 0:
        return Bootstrap(value, float("nan"), float("nan"), float("nan"), n_resamples, confidence_level, n_resamples)
    tail = (1 - confidence_level) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    se = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return Bootstrap(value, float(low), float(high), se, n_resamples, confidence_level, int(stats.size - finite.size))


def bootstrap_metric(name: str, predictions: Sequence, references: Sequence, **kwargs) -> Bootstrap:
    """The metric `name` (see METRICS) of predictions against references, with its bootstrap interval over the
    examples; `kwargs` go to `bootstrap` (n_resamples, confidence_level, seed).

    Example:
        >>> bootstrap_metric("accuracy", [1, 0, 1, 1], [1, 0, 0, 1], n_resamples=100).value
        0.75
    """
    preds, refs = _checked(predictions, references, name)
    fn = METRICS[name]
    return bootstrap(lambda i: fn(preds[i], refs[i]), len(refs), **kwargs)


def bootstrap_difference(name: str, runs_a: Sequence[Sequence], runs_b: Sequence[Sequence], references: Sequence,
                         **kwargs) -> Bootstrap:
    """How much A beats B on the same evaluation examples: the metric averaged over A's runs (e.g. seeds) minus
    the metric averaged over B's, with a paired bootstrap interval (each resample scores every run on the same
    examples, so what the two share cancels).

    Example:
        >>> bootstrap_difference("accuracy", [[1, 1, 0, 1]], [[0, 1, 0, 0]], [1, 1, 0, 1], n_resamples=100).value
        0.5
    """
    if not runs_a or not runs_b:
        raise ValueError("both sides need at least one run")
    refs = np.asarray(references)
    if any(len(r) != len(refs) for r in (*runs_a, *runs_b)):
        raise ValueError("every run must predict the same evaluation examples as the references")
    a = [_checked(r, refs, name)[0] for r in runs_a]
    b = [_checked(r, refs, name)[0] for r in runs_b]
    fn = METRICS[name]

    def difference(i: np.ndarray) -> float:
        return float(np.mean([fn(p[i], refs[i]) for p in a]) - np.mean([fn(p[i], refs[i]) for p in b]))

    return bootstrap(difference, len(refs), **kwargs)


def bootstrap_mean(values: Sequence[float], **kwargs) -> Bootstrap:
    """The mean of per-example scores (QA's per-question exact match or F1, `squad_metrics.question_scores`) with
    its bootstrap interval.

    Example:
        >>> bootstrap_mean([0.0, 1.0], n_resamples=100).value
        0.5
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"per-example scores must be one number per example, not shape {x.shape}")
    return bootstrap(lambda i: x[i].mean(), len(x), **kwargs)


def _checked(predictions: Sequence, references: Sequence, name: str) -> tuple[np.ndarray, np.ndarray]:
    preds, refs = np.asarray(predictions), np.asarray(references)
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; available: {sorted(METRICS)}")
    if preds.shape != refs.shape:
        raise ValueError(f"{len(preds)} predictions for {len(refs)} labels")
    return preds, refs
