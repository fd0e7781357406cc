"""nlp-ssl's task metrics as `evaluate` metric modules, shipped inside the package so they load offline.

`evaluate.load("accuracy")` fetches a script from the Hub (which fails offline); these directories hold the same
metrics as `nlp_ssl.metrics` and `nlp_ssl.squad_metrics` (the modules call those functions), loadable by path.
`evaluate` itself (about 9 s to import here) is imported only by `load`, `combine` and `bootstrap`.

Example:
    >>> acc = load("accuracy")  # doctest: +SKIP
    >>> acc.compute(predictions=[1, 0, 1], references=[1, 1, 1])  # doctest: +SKIP
    {'accuracy': 0.6666666666666666}
    >>> import evaluate  # doctest: +SKIP
    >>> evaluate.load(path("f1")).compute(predictions=[1, 0], references=[1, 1])  # doctest: +SKIP
    {'f1': 0.6666666666666666}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent
NAMES = ("accuracy", "f1", "macro_f1", "matthews_correlation", "pearson", "spearmanr", "squad_v1", "squad_v2")


def path(name: str) -> str:
    """The directory of the module `name`, for `evaluate.load(path(name))`."""
    if name not in NAMES:
        raise ValueError(f"no nlp-ssl metric module {name!r}; available: {', '.join(NAMES)}")
    return str(ROOT / name)


def load(name: str, **kwargs: Any):
    """`evaluate.load` of the packaged module `name` (offline)."""
    import evaluate

    return evaluate.load(path(name), **kwargs)


def combine(names: Sequence[str]):
    """`evaluate.combine` of packaged modules, e.g. combine(["accuracy", "f1"])."""
    import evaluate

    return evaluate.combine([load(n) for n in names])


class _Direct:
    """A loaded module whose `compute` skips evaluate's per-call Arrow cache (about 20-100 ms a call here, so
    1,000 resamples would take minutes) and runs the module's own `_compute` on the resampled inputs."""

    def __init__(self, metric):
        self.metric = metric

    def compute(self, **inputs):
        return self.metric._compute(**inputs)


def bootstrap(name: str, predictions: Sequence, references: Sequence, n_resamples: int = 1000,
              confidence_level: float = 0.95, seed: int = 0, direct: bool = True) -> dict[str, Any]:
    """The metric with a bootstrap confidence interval, computed by `evaluate`'s own bootstrap (the routine behind
    `evaluator(...).compute(strategy="bootstrap")`: scipy's BCa bootstrap over examples, seeded).

    Args:
        direct: resample through the module's `_compute` (same values, milliseconds instead of minutes).

    Returns:
        {"score", "confidence_interval": (low, high), "standard_error", "n_resamples", "confidence_level"}
    """
    from evaluate.evaluator.base import Evaluator

    metric = load(name, keep_in_memory=True)
    score = metric.compute(predictions=list(predictions), references=list(references))[name]
    ci = Evaluator._compute_confidence_interval(_Direct(metric) if direct else metric,
                                                {"predictions": list(predictions), "references": list(references)},
                                                [name], confidence_level=confidence_level, n_resamples=n_resamples,
                                                random_state=seed)[name]
    low, high = ci["confidence_interval"]
    return {"score": score, "confidence_interval": (float(low), float(high)),
            "standard_error": float(ci["standard_error"]), "n_resamples": n_resamples,
            "confidence_level": confidence_level}


def evaluator(task: str):
    """`evaluate.evaluator(task)`, usable with transformers 5: pass a saved model directory as `model_or_pipeline`.

    evaluate 0.4.6 hands the pipeline a lazy dataset column (a `list` subclass whose list part is empty), which
    transformers 5 tokenizers reject ("text input must be of type str ..."); the column is materialised first.
    (A pipeline object as `model_or_pipeline` also fails there: evaluate checks `transformers.TFPreTrainedModel`,
    which transformers 5 no longer has; give the directory instead.)

    Example:
        >>> ev = evaluator("text-classification")  # doctest: +SKIP
        >>> ev.compute(model_or_pipeline="runs/quickstart/sst2", data=dev, metric=load("accuracy"),
        ...            label_mapping={"negative": 0, "positive": 1})  # doctest: +SKIP
    """
    import evaluate
    from evaluate.evaluator.utils import DatasetColumn, DatasetColumnPair

    ev = evaluate.evaluator(task)
    call = ev.call_pipeline

    def call_pipeline(pipe, *args, **kwargs):
        args = tuple(list(a) if isinstance(a, (DatasetColumn, DatasetColumnPair)) else a for a in args)
        return call(pipe, *args, **kwargs)

    ev.call_pipeline = call_pipeline
    return ev


class _Difference:
    """metric(mean over A's runs) - metric(mean over B's runs) on the same examples, for evaluate's bootstrap."""

    def __init__(self, metric, name: str, n_a: int):
        self.metric, self.name, self.n_a = metric, name, n_a

    def compute(self, **inputs):
        refs = inputs.pop("references")
        runs = list(inputs.values())
        score = [self.metric._compute(predictions=p, references=refs)[self.name] for p in runs]
        a, b = score[: self.n_a], score[self.n_a:]
        return {"difference": sum(a) / len(a) - sum(b) / len(b)}


def bootstrap_difference(name: str, runs_a: Sequence[Sequence], runs_b: Sequence[Sequence], references: Sequence,
                         n_resamples: int = 1000, confidence_level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """How much model A beats model B on the same evaluation examples, with a paired bootstrap interval: the
    examples are resampled once per round for every run alike (evaluate's bootstrap, `paired=True`), and the
    statistic is the mean score of A's runs (e.g. seeds) minus the mean score of B's.

    Returns:
        {"difference", "confidence_interval": (low, high), "standard_error", "n_resamples", "confidence_level"}
    """
    from evaluate.evaluator.base import Evaluator

    if any(len(r) != len(references) for r in (*runs_a, *runs_b)):
        raise ValueError("every run must predict the same evaluation examples as the references")
    diff = _Difference(load(name, keep_in_memory=True), name, len(runs_a))
    inputs = {f"run{i}": list(r) for i, r in enumerate((*runs_a, *runs_b))}
    inputs["references"] = list(references)
    value = diff.compute(**dict(inputs))["difference"]
    ci = Evaluator._compute_confidence_interval(diff, inputs, ["difference"], confidence_level=confidence_level,
                                                n_resamples=n_resamples, random_state=seed)["difference"]
    low, high = ci["confidence_interval"]
    return {"difference": value, "confidence_interval": (float(low), float(high)),
            "standard_error": float(ci["standard_error"]), "n_resamples": n_resamples,
            "confidence_level": confidence_level}
