"""nlp-ssl's task metrics as `evaluate` metric modules, shipped inside the package so they load offline.

`evaluate.load("accuracy")` fetches a script from the Hub (which fails offline); the directories here hold the same
metrics as `nlp_ssl.metrics` and `nlp_ssl.squad_metrics`, loadable by path. One table (`MODULES`) defines them all:
`module_class(name)` builds a module's `evaluate.Metric` class from its row, and each `<name>/<name>.py` (what
`evaluate.load(directory)` looks for) is a three-line file that calls it, written by `write_modules()` and checked
against it by the tests. `evaluate` itself (seconds to import) is imported only when a module is built or loaded.

Bootstrap intervals do not need `evaluate`: see `nlp_ssl.metrics.bootstrap`.

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

# name -> (inputs, description). Inputs: "class ids" and "real values" score with nlp_ssl.metrics.METRICS[name]
# (int64 / float64 inputs, so nothing is rounded); "squad_v1"/"squad_v2" with nlp_ssl.squad_metrics.
MODULES: dict[str, tuple[str, str]] = {
    "accuracy": ("class ids", "share of predictions equal to the label"),
    "f1": ("class ids", "binary F1 of class 1 (MRPC, QQP)"),
    "macro_f1": ("class ids", "unweighted mean of the per-class F1 scores"),
    "matthews_correlation": ("class ids", "Matthews correlation coefficient (CoLA); 0 when a column is constant"),
    "pearson": ("real values", "Pearson correlation (STS-B); NaN when either side is constant"),
    "spearmanr": ("real values", "Spearman rank correlation (STS-B); NaN when either side is constant"),
    "squad_v1": ("squad_v1", "SQuAD v1.1 exact match and F1 in % (official definitions)"),
    "squad_v2": ("squad_v2", "SQuAD v2.0 exact match and F1 in %: overall, HasAns, NoAns, best thresholds "
                             "(official definitions)"),
}
NAMES = tuple(MODULES)

_INPUTS = {
    "class ids": "predictions: predicted class ids.\n    references: gold class ids.",
    "real values": "predictions: predicted real-valued scores.\n    references: gold real-valued scores.",
    "squad_v1": 'predictions: list of {"id": str, "prediction_text": str}.\n    references: list of {"id": str, '
                '"answers": {"text": list of str, "answer_start": list of int}}.',
    "squad_v2": 'predictions: list of {"id": str, "prediction_text": str, "no_answer_probability": float}, where '
                "no_answer_probability holds nlp-ssl's na_score (null score minus best span score, what "
                "na_scores.json records).\n    references: as for squad_v1; an unanswerable question has no answer "
                'text.\n    no_answer_threshold: a question whose na_score is above it is answered "" (default 0.0).',
}
_RETURNS = {"squad_v1": '{"exact_match", "f1", "total"}',
            "squad_v2": '{"exact", "f1", "total", "HasAns_*", "NoAns_*", "best_exact(_thresh)", "best_f1(_thresh)"}'}

_MODULE_FILE = '''"""`{name}`: {description}.

Loads offline: evaluate.load(nlp_ssl.evaluate_metrics.path("{name}")). Written from the table in
nlp_ssl/evaluate_metrics/__init__.py by write_modules(); edit the table, not this file.
"""

from nlp_ssl.evaluate_metrics import module_class

{cls} = module_class("{name}", __name__)
'''


def _class_name(name: str) -> str:
    # evaluate names a module after its class (camel case back to snake case): SquadV1 -> squad_v1
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def module_text(name: str) -> str:
    """The source of the shipped file `<name>/<name>.py`."""
    return _MODULE_FILE.format(name=name, description=MODULES[name][1], cls=_class_name(name))


def write_modules(root: Path = ROOT) -> list[Path]:
    """Write every module file of MODULES under `root` (run after changing the table; a test checks them)."""
    written = []
    for name in MODULES:
        p = root / name / f"{name}.py"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(module_text(name), encoding="utf-8")
        written.append(p)
    return written


def _squad_features(datasets, v2: bool):
    pred = {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")}
    if v2:
        pred["no_answer_probability"] = datasets.Value("float64")
    answers = datasets.Sequence({"text": datasets.Value("string"), "answer_start": datasets.Value("int32")})
    return datasets.Features({"predictions": pred, "references": {"id": datasets.Value("string"), "answers": answers}})


def _compute_for(name: str, inputs: str):
    if inputs == "squad_v1":
        from nlp_ssl.squad_metrics import squad_v1

        def compute(self, predictions, references):
            return squad_v1({p["id"]: p["prediction_text"] for p in predictions},
                            {r["id"]: list(r["answers"]["text"]) for r in references})
    elif inputs == "squad_v2":
        from nlp_ssl.squad_metrics import squad_v2

        def compute(self, predictions, references, no_answer_threshold: float = 0.0):
            return squad_v2({p["id"]: p["prediction_text"] for p in predictions},
                            {r["id"]: list(r["answers"]["text"]) for r in references},
                            {p["id"]: p["no_answer_probability"] for p in predictions}, threshold=no_answer_threshold)
    else:
        import numpy as np

        from nlp_ssl.metrics import METRICS

        def compute(self, predictions, references):
            return {name: METRICS[name](np.asarray(predictions), np.asarray(references))}
    return compute


def module_class(name: str, module: str | None = None) -> type:
    """The `evaluate.Metric` subclass of the metric `name`, built from its row in MODULES (`module`: the
    `__module__` it reports, the loading file's name)."""
    import datasets
    import evaluate

    if name not in MODULES:
        raise ValueError(f"no nlp-ssl metric module {name!r}; available: {', '.join(NAMES)}")
    inputs, description = MODULES[name]
    if inputs.startswith("squad"):
        features = _squad_features(datasets, inputs == "squad_v2")
    else:
        value = datasets.Value("int64" if inputs == "class ids" else "float64")
        features = datasets.Features({"predictions": value, "references": value})
    doc = f"\nArgs:\n    {_INPUTS[inputs]}\nReturns:\n    {_RETURNS.get(inputs, '{%r: float}' % name)}\n"

    def _info(self):
        return evaluate.MetricInfo(module_type="metric", description=description, citation="",
                                   inputs_description=doc, features=features)

    return type(_class_name(name), (evaluate.Metric,),
                {"_info": _info, "_compute": _compute_for(name, inputs), "__module__": module or __name__,
                 "__doc__": f"{name}: {description}."})


def path(name: str) -> str:
    """The directory of the module `name`, for `evaluate.load(path(name))`."""
    if name not in MODULES:
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
