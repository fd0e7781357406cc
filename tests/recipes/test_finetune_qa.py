"""Extractive-QA fine-tuning on a tiny encoder and real SQuAD-format slices: artifacts that load without
nlp_ssl, official-format predictions, `nlp-ssl answer` reproducing evaluation, v2 thresholds, evaluate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nlp_ssl.config import from_dict
from nlp_ssl.recipes.finetune import main as finetune
from nlp_ssl.tasks.qa_finetune import QAFinetuneConfig


def slice_of(src: Path, out: Path, paragraphs: int) -> Path:
    """The first `paragraphs` paragraphs of the first article of a real SQuAD file."""
    data = json.loads(src.read_text())
    article = data["data"][0]
    out.write_text(json.dumps({"version": data.get("version", "1.1"), "data": [
        {"title": article["title"], "paragraphs": article["paragraphs"][:paragraphs]}]}))
    return out


def qa_config(tmp_path, encoder, eval_path, name="qa", **task):
    data = {"output_dir": str(tmp_path / name), "model": str(encoder),
            "task": {"type": "extractive_qa", "preset": "squad", "max_length": 96, "doc_stride": 32,
                     "max_query_length": 24, "train": {"path": "qa/squadshifts/new_wiki_v1.0.json", "max_examples": 300},
                     "eval": {"dev": {"path": str(eval_path)}}, **task},
            "train": {"learning_rate": [1e-3], "max_steps": 8, "per_device_train_batch_size": 16, "logging_steps": 1000}}
    return from_dict(QAFinetuneConfig, data)


@pytest.fixture(scope="module")
def v1_run(tmp_path_factory, tiny_encoder_dir, data_dir):
    tmp = tmp_path_factory.mktemp("qa-v1")
    dev = slice_of(Path(data_dir) / "qa/squad/dev-v1.1-half-a.json", tmp / "dev-slice.json", 3)
    metrics = finetune(qa_config(tmp, tiny_encoder_dir, dev), data_dir)
    return tmp, dev, metrics


def test_qa_run_saves_model_predictions_and_official_metrics(v1_run):
    tmp, dev, metrics = v1_run
    out = tmp / "qa"
    assert {"model.safetensors", "config.json", "tokenizer.json", "metrics.json", "config.yaml",
            "predictions.json"} <= {p.name for p in out.iterdir()}
    ids = [q["id"] for p in json.loads(dev.read_text())["data"][0]["paragraphs"] for q in p["qas"]]
    preds = json.loads((out / "predictions.json").read_text())
    assert sorted(preds) == sorted(ids) and all(isinstance(v, str) for v in preds.values())
    m = metrics["eval"]["dev"]
    # the reported scores are exactly those of the saved predictions, question by question (official v1.1 rules)
    from nlp_ssl.squad_metrics import exact_match, f1_score_v1

    refs = {q["id"]: [a["text"] for a in q["answers"]] for p in json.loads(dev.read_text())["data"][0]["paragraphs"]
            for q in p["qas"]}
    em = [max(exact_match(preds[q], t) for t in refs[q]) for q in ids]
    f1 = [max(f1_score_v1(preds[q], t) for t in refs[q]) for q in ids]
    assert m["total"] == len(ids)
    assert m["exact_match"] == pytest.approx(100 * sum(em) / len(ids))
    assert m["f1"] == pytest.approx(100 * sum(f1) / len(ids))
    assert metrics["steps"] == 8 and metrics["train_features"] >= metrics["train_questions"] == 300
    assert metrics["train_features_per_second"] > 0
    saved = json.loads((out / "metrics.json").read_text())  # a SQuAD figure records where it came from
    assert {"git", "versions", "machine", "wall_seconds"} <= set(saved["provenance"])
    assert saved["provenance"]["machine"]["load_average_start"] is not None
    settings = json.loads((out / "config.json").read_text())["extractive_qa"]
    assert settings["max_length"] == 96 and settings["version"] == "v1"
    code = ("import sys; from transformers import AutoModelForQuestionAnswering as M; M.from_pretrained(sys.argv[1]); "
            "assert not [m for m in sys.modules if m.startswith('nlp_ssl')]")
    res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


def test_answer_api_and_cli_reproduce_evaluation(v1_run):
    from nlp_ssl.answer import ExtractiveQA
    from nlp_ssl.cli import main as cli

    tmp, dev, _ = v1_run
    out = tmp / "qa"
    qa = ExtractiveQA(str(out))
    assert qa.answer_file(str(dev)) == json.loads((out / "predictions.json").read_text())
    context = "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy."
    one = qa("Who gave their name to Normandy?", context, top_k=3)
    assert len(one) == 3 and all(context[c["start"]:c["end"]] == c["answer"] for c in one)
    assert cli(["answer", str(out), "--file", str(dev), "--output", str(tmp / "p.json")]) == 0
    assert json.loads((tmp / "p.json").read_text()) == json.loads((out / "predictions.json").read_text())
    assert cli(["answer", str(out), "--question", "Who?", "--context", " "]) == 4  # empty context: a clear data error


def test_answer_states_the_models_measured_quality(v1_run, capsys):
    """`nlp-ssl answer` prints the reported split's EM/F1 from the run's metrics.json beside every answer."""
    from nlp_ssl.answer import measured_quality
    from nlp_ssl.cli import main as cli

    tmp, _, _ = v1_run
    out = tmp / "qa"
    dev = json.loads((out / "metrics.json").read_text())["eval"]["dev"]
    capsys.readouterr()
    assert cli(["answer", str(out), "--question", "Who?", "--context", "The Normans gave their name to Normandy."]) == 0
    err = capsys.readouterr().err
    assert f"dev F1 {dev['f1']:.1f}, exact match {dev['exact_match']:.1f} over {dev['total']:,} questions" in err
    assert measured_quality(tmp) is None  # no metrics.json there: nothing claimed


def test_registered_pipeline_gives_the_same_answers(v1_run):
    from transformers import pipeline

    from nlp_ssl.answer import ExtractiveQA, register_pipeline

    tmp, dev, _ = v1_run
    out = str(tmp / "qa")
    pipe = pipeline(register_pipeline(), model=out)
    paragraph = json.loads(dev.read_text())["data"][0]["paragraphs"][0]
    question, context = paragraph["qas"][0]["question"], paragraph["context"]
    got = pipe(question=question, context=context, top_k=2)
    want = ExtractiveQA(out)(question, context, top_k=2)
    assert [g["answer"] for g in got] == [w["answer"] for w in want]
    assert [g["score"] for g in got] == pytest.approx([w["score"] for w in want], abs=1e-4)


def test_evaluate_command_reproduces_the_scores(v1_run, data_dir):
    from nlp_ssl.recipes.evaluate import EvaluateConfig
    from nlp_ssl.recipes.evaluate import main as evaluate

    tmp, _, metrics = v1_run
    ev = evaluate(from_dict(EvaluateConfig, {"model": str(tmp / "qa")}), data_dir)
    assert ev["eval"]["dev"]["f1"] == pytest.approx(metrics["eval"]["dev"]["f1"])


def test_evaluate_scores_the_same_questions_as_the_run(tmp_path, tiny_encoder_dir, data_dir):
    """A run that scored only its first questions (max_eval_samples) is evaluated on the same ones."""
    from nlp_ssl.recipes.evaluate import EvaluateConfig
    from nlp_ssl.recipes.evaluate import main as evaluate

    dev = slice_of(Path(data_dir) / "qa/squad/dev-v1.1-half-a.json", tmp_path / "dev-slice.json", 2)
    cfg = qa_config(tmp_path, tiny_encoder_dir, dev)
    cfg.max_eval_samples, cfg.train.max_steps = 4, 2
    run = finetune(cfg, data_dir)["eval"]["dev"]
    assert run["total"] == 4
    ev = evaluate(from_dict(EvaluateConfig, {"model": str(tmp_path / "qa")}), data_dir)["eval"]["dev"]
    assert ev["total"] == 4 and (ev["exact_match"], ev["f1"]) == pytest.approx((run["exact_match"], run["f1"]))
    every = evaluate(from_dict(EvaluateConfig, {"model": str(tmp_path / "qa"), "max_eval_samples": -1}), data_dir)
    assert every["eval"]["dev"]["total"] == sum(len(p["qas"]) for p in json.loads(dev.read_text())["data"][0]["paragraphs"])


def test_v2_tunes_the_null_threshold_on_the_selection_half_and_reports_the_other(tmp_path, tiny_encoder_dir, data_dir):
    dev = slice_of(Path(data_dir) / "qa/squad_v2/dev-v2.0-half.json", tmp_path / "dev-v2.json", 2)
    metrics = finetune(qa_config(tmp_path, tiny_encoder_dir, dev, version="v2", preset="squad_v2"), data_dir)
    sel, m = metrics["eval"]["selection"], metrics["eval"]["dev"]
    assert {"HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh", "null_threshold"} <= set(m)
    # tuned on the selection questions (the best threshold there), applied unchanged to the reported ones
    assert sel["null_threshold"] == sel["best_f1_thresh"] and sel["f1"] == pytest.approx(sel["best_f1"])
    assert m["null_threshold"] == sel["null_threshold"]
    assert metrics["report_split"] == "dev" and metrics["null_threshold_oracle"] is False
    assert sel["total"] + m["total"] == len([q for p in json.loads(dev.read_text())["data"][0]["paragraphs"]
                                              for q in p["qas"]])
    sel_preds = json.loads((tmp_path / "qa" / "predictions-selection.json").read_text())
    settings = json.loads((tmp_path / "qa" / "config.json").read_text())["extractive_qa"]
    assert settings["version"] == "v2" and settings["null_threshold"] == pytest.approx(m["null_threshold"])
    na = json.loads((tmp_path / "qa" / "na_scores.json").read_text())
    preds = json.loads((tmp_path / "qa" / "predictions.json").read_text())  # the reported split
    assert set(preds).isdisjoint(sel_preds) and len(preds) == m["total"]
    assert all((preds[q] == "") == (na[q] > m["null_threshold"]) for q in preds)


def test_qa_runs_a_learning_rate_grid_and_seeds_with_mean_and_std(tmp_path, tiny_encoder_dir, data_dir):
    """Extractive QA in the one run loop: the grid on the first seed scored by F1 on the selection split, then
    both seeds at the chosen rate, each a model directory; the summary is the mean and std over the seeds."""
    dev = slice_of(Path(data_dir) / "qa/squad/dev-v1.1-half-a.json", tmp_path / "dev-slice.json", 2)
    cfg = qa_config(tmp_path, tiny_encoder_dir, dev, name="grid", selection_fraction=0.5)
    cfg.seed = [1, 2]
    cfg.max_train_samples = 40
    cfg.train.learning_rate, cfg.train.max_steps = [1e-3, 3e-3], 2
    summary = finetune(cfg, data_dir)
    out = tmp_path / "grid"
    assert summary["selection"]["split"] == "selection" and summary["selection"]["metric"] == "f1"
    assert set(summary["selection"]["grid"]) == {"0.001", "0.003"} and summary["report_split"] == "dev"
    best = summary["selection"]["best_learning_rate"]
    f1 = [r["eval"]["dev"]["f1"] for r in summary["runs"]]
    dev_f1 = summary["summary"]["dev"]["f1"]
    assert dev_f1["n"] == 2 and dev_f1["mean"] == pytest.approx(sum(f1) / 2)
    assert dev_f1["std"] == pytest.approx(abs(f1[0] - f1[1]) / 2 ** 0.5)
    assert json.loads((out / "metrics.json").read_text())["summary"] == summary["summary"]
    for seed in (1, 2):  # each cell a QA model directory with its official predictions and its own sample
        cell = out / f"lr{best:g}-seed{seed}"
        m = json.loads((cell / "metrics.json").read_text())
        assert m["seed"] == seed and m["train_questions"] == 40 and (cell / "predictions.json").is_file()
        assert json.loads((cell / "config.json").read_text())["extractive_qa"]["version"] == "v1"
        assert json.loads((cell / "run_info.json").read_text())["artifact"]["auto_class"] == "AutoModelForQuestionAnswering"
