"""The packaged `evaluate` metric modules load offline and return exactly nlp_ssl.metrics / squad_metrics values."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")  # nothing here may need the Hub

from nlp_ssl import evaluate_metrics as em  # noqa: E402
from nlp_ssl.metrics import METRICS, compute_metrics  # noqa: E402
from nlp_ssl.squad_metrics import squad_v1, squad_v2  # noqa: E402


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _cases():
    rng = np.random.default_rng(0)
    y2 = rng.integers(0, 2, 300)
    p2 = np.where(rng.random(300) < 0.7, y2, 1 - y2)
    y3, p3 = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    ys, ps = rng.normal(size=150), rng.normal(size=150)
    return {
        "binary": (p2, y2), "three classes": (p3, y3), "constant predictions": (np.zeros(50, int), y2[:50]),
        "regression": (ps + ys, ys), "constant regression": (np.ones(20), ys[:20]),
    }


@pytest.mark.parametrize("name", ["accuracy", "f1", "macro_f1", "matthews_correlation", "pearson", "spearmanr"])
def test_classification_and_regression_modules_equal_nlp_ssl_metrics(name):
    module = em.load(name)
    regression = name in ("pearson", "spearmanr")
    for case, (preds, refs) in _cases().items():
        if regression != case.endswith("regression") or (name == "f1" and case == "three classes"):
            continue
        got = module.compute(predictions=preds.tolist(), references=refs.tolist())[name]
        assert _same(got, METRICS[name](preds, refs)), (name, case)


def test_combine_equals_compute_metrics():
    preds, refs = _cases()["binary"]
    combined = em.combine(["accuracy", "f1", "matthews_correlation"]).compute(predictions=preds.tolist(),
                                                                              references=refs.tolist())
    assert combined == compute_metrics(["accuracy", "f1", "matthews_correlation"], preds, refs)


def _refs(answers: dict[str, list[str]]) -> list[dict]:
    return [{"id": q, "answers": {"text": a, "answer_start": [0] * len(a)}} for q, a in answers.items()]


def test_squad_modules_equal_the_official_definitions():
    refs = {"q1": ["the Eiffel Tower", "Eiffel Tower"], "q2": ["1889"], "q3": ["Gustave Eiffel's company"]}
    preds = {"q1": "Eiffel tower", "q2": "in 1889", "q3": "a company"}
    got = em.load("squad_v1").compute(predictions=[{"id": q, "prediction_text": t} for q, t in preds.items()],
                                      references=_refs(refs))
    assert got == squad_v1(preds, refs) and got["exact_match"] == pytest.approx(100 / 3)

    refs2 = {**refs, "q4": [], "q5": []}  # two unanswerable questions
    preds2 = {**preds, "q4": "Paris", "q5": ""}
    na = {"q1": -3.0, "q2": 1.5, "q3": -0.5, "q4": 2.0, "q5": -1.0}
    module = em.load("squad_v2")
    rows = [{"id": q, "prediction_text": preds2[q], "no_answer_probability": na[q]} for q in preds2]
    for threshold in (0.0, 1.0):
        got = module.compute(predictions=rows, references=_refs(refs2), no_answer_threshold=threshold)
        assert got == squad_v2(preds2, refs2, na, threshold=threshold)
    assert got["NoAns_total"] == 2 and got["HasAns_total"] == 3


def test_shipped_module_files_are_generated_from_the_table():
    """Each `<name>/<name>.py` (package data: pyproject ships `*/*.py`) is what write_modules() writes from MODULES,
    and there is one per row: edit the table, then run write_modules()."""
    shipped = {p.parent.name: p for p in em.ROOT.glob("*/*.py")}
    assert sorted(shipped) == sorted(em.MODULES)
    for name, p in shipped.items():
        assert p.name == f"{name}.py"  # evaluate.load(directory) looks for the file named like the directory
        assert p.read_text(encoding="utf-8") == em.module_text(name), f"{p} is stale: run write_modules()"
    assert em.module_class("matthews_correlation").__name__ == "MatthewsCorrelation"  # evaluate's module name
    with pytest.raises(ValueError, match="available: accuracy, f1"):
        em.path("acuracy")


def test_evaluator_scores_a_saved_model_with_the_packaged_metric(tmp_path, tiny_encoder_dir, data_dir):
    """`evaluate.evaluator("text-classification")` (through `em.evaluator`, see there) on a saved model directory,
    offline, agrees with nlp-ssl's accuracy of the same pipeline's predictions."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, pipeline

    from nlp_ssl.tokenization import load_tokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(tiny_encoder_dir), num_labels=2, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1})
    out = tmp_path / "clf"
    model.save_pretrained(str(out))
    load_tokenizer(str(tiny_encoder_dir)).save_pretrained(str(out))
    lines = (os.path.join(data_dir, "glue/sst2/dev.tsv"))
    rows = [line.rstrip("\n").split("\t") for line in open(lines, encoding="utf-8").readlines()[1:41]]
    data = Dataset.from_dict({"text": [r[0] for r in rows], "label": [int(r[1]) for r in rows]})
    result = em.evaluator("text-classification").compute(
        model_or_pipeline=str(out), data=data, metric=em.load("accuracy"), label_mapping={"negative": 0, "positive": 1})
    pipe = pipeline("text-classification", model=str(out))
    preds = [{"negative": 0, "positive": 1}[p["label"]] for p in pipe(list(data["text"]))]
    assert result["accuracy"] == compute_metrics(["accuracy"], preds, list(data["label"]))["accuracy"]
