"""Fine-tuning and evaluation recipes on a tiny encoder and real GLUE/IMDB slices: artifacts that load without
nlp_ssl, seeds and learning-rate grid, resume, self-training, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch

from nlp_ssl.config import from_dict
from nlp_ssl.errors import DataError, NlpSslError
from nlp_ssl.recipes.evaluate import EvaluateConfig
from nlp_ssl.recipes.evaluate import main as evaluate
from nlp_ssl.recipes.finetune import FinetuneConfig, main

SST2_SLICE = {"preset": "sst2", "held_out_unit": "example", "max_length": 64,  # a slice: too few sentences to hold out whole
              "train": {"path": "glue/sst2/train.tsv", "max_examples": 400},
              "eval": {"dev": {"path": "glue/sst2/dev.tsv", "max_examples": 200}}}


def cfg(tmp_path, encoder, name="run", task=None, train=None, **top) -> FinetuneConfig:
    t = {"learning_rate": [1e-3], "num_train_epochs": 1, "per_device_train_batch_size": 16, "logging_steps": 1000, **(train or {})}
    return from_dict(FinetuneConfig, {"output_dir": str(tmp_path / name), "model": str(encoder),
                                      "task": task or SST2_SLICE, "train": t, **top})


def test_single_run_saves_a_model_that_loads_without_nlp_ssl(tmp_path, tiny_encoder_dir, data_dir):
    curve = {"eval_steps": 10}  # selection accuracy scored every 10 steps: learning_curve.json and the plot
    metrics = main(cfg(tmp_path, tiny_encoder_dir, train=curve), data_dir)
    out = tmp_path / "run"
    assert {"model.safetensors", "config.json", "tokenizer.json", "metrics.json", "config.yaml", "run_info.json",
            "predictions-dev.jsonl"} <= {p.name for p in out.iterdir()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    assert 0 <= metrics["eval"]["dev"]["accuracy"] <= 1 and metrics["steps"] == 25  # 400 / 16
    rows = [json.loads(line) for line in (out / "predictions-dev.jsonl").read_text().splitlines()]
    assert len(rows) == 200 and {r["label"] for r in rows} <= {"negative", "positive"}
    acc = sum(r["label"] == r["prediction"] for r in rows) / len(rows)
    assert acc == pytest.approx(metrics["eval"]["dev"]["accuracy"])
    # kept from training: the log history, the dev curve, the plot, and a card that states the score
    assert json.loads((out / "log_history.json").read_text())[-1]["step"] == 25
    points = json.loads((out / "learning_curve.json").read_text())["points"]
    assert [p["step"] for p in points] == [10, 20, 25]
    # the best weights are chosen on the selection split (carved from train), never on dev, which is reported
    assert max(p["accuracy"] for p in points) == pytest.approx(metrics["eval"]["selection"]["accuracy"])  # best kept
    assert (metrics["selection_split"], metrics["report_split"], metrics["oracle"]) == ("selection", "dev", False)
    prov = json.loads((out / "metrics.json").read_text())["provenance"]  # where the figure came from
    assert {"git", "versions", "machine", "started", "ended"} <= set(prov)
    assert len(prov["machine"]["load_average_start"]) == 3 and prov["machine"]["cores"] >= 1
    assert (out / "plots" / "training.png").read_bytes()[:4] == b"\x89PNG"
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [
        ("accuracy", metrics["eval"]["dev"]["accuracy"])]
    code = ("import sys; from transformers import pipeline; p = pipeline('text-classification', model=sys.argv[1]); "
            "print(p('a charming journey')[0]['label']); assert not [m for m in sys.modules if m.startswith('nlp_ssl')]")
    res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[-1] in ("negative", "positive")

    # the same config again: nothing to do; another config in the same directory: refused
    assert main(cfg(tmp_path, tiny_encoder_dir, train=curve), data_dir) == json.loads((out / "metrics.json").read_text())
    with pytest.raises(NlpSslError, match="already holds another run; set overwrite=true"):
        main(cfg(tmp_path, tiny_encoder_dir, train={**curve, "num_train_epochs": 2}), data_dir)

    # `nlp-ssl evaluate MODEL_DIR` reads the task from the model and reproduces the scores
    ev = evaluate(from_dict(EvaluateConfig, {"model": str(out), "output_dir": str(tmp_path / "ev")}), data_dir)
    assert ev["eval"]["dev"] == pytest.approx(metrics["eval"]["dev"])
    assert (tmp_path / "ev" / "predictions-dev.jsonl").read_text() == (out / "predictions-dev.jsonl").read_text()


def test_pretrained_init_keeps_encoder_weights_scratch_does_not(tiny_encoder_dir):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    from nlp_ssl.tasks.models import build_task_model

    saved = load_file(str(tiny_encoder_dir / "model.safetensors"))
    key = "bert.encoder.layer.0.attention.self.query.weight"
    pre = build_task_model(AutoModelForSequenceClassification, str(tiny_encoder_dir), "pretrained", 1, 0.1, num_labels=2)
    scratch = build_task_model(AutoModelForSequenceClassification, str(tiny_encoder_dir), "scratch", 1, 0.1, num_labels=2)
    assert torch.equal(pre.state_dict()[key], saved[key])
    assert not torch.equal(scratch.state_dict()[key], saved[key])
    assert pre.config.hidden_dropout_prob == 0.1 and scratch.config.num_labels == 2
    again = build_task_model(AutoModelForSequenceClassification, str(tiny_encoder_dir), "scratch", 1, 0.1, num_labels=2)
    assert torch.equal(again.state_dict()[key], scratch.state_dict()[key])  # seeded


def test_dynamic_padding_pads_to_the_batch_longest(tiny_tokenizer_dir):
    from nlp_ssl.tasks.inference import PadCollator
    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    feats = [{**tok(t), "labels": 1, "idx": 3, "length": 9} for t in ("a b", "a b c d e")]
    batch = PadCollator(tok)(feats)
    assert batch["input_ids"].shape == (2, len(tok("a b c d e")["input_ids"]))
    assert batch["attention_mask"][0].tolist().count(0) == 3 and set(batch) == {
        "input_ids", "token_type_ids", "attention_mask", "labels"}


def test_seeds_grid_summary_and_resume(tmp_path, tiny_encoder_dir, data_dir, monkeypatch):
    config = cfg(tmp_path, tiny_encoder_dir, train={"learning_rate": [1e-4, 3e-3], "num_train_epochs": 2},
                 seed=[1, 2], max_train_samples=40)
    summary = main(config, data_dir)
    out = tmp_path / "run"
    best = summary["selection"]["best_learning_rate"]
    assert {p.name for p in out.glob("lr*")} == {"lr0.0001-seed1", "lr0.003-seed1", f"lr{best:g}-seed2"}
    assert (out / "plots" / "grid.png").is_file()
    from nlp_ssl.atomic import is_complete

    # each run's completeness marker still holds after its card was rewritten with the mean over seeds
    assert [d.name for d in out.glob("lr*") if not is_complete(d)] == []
    # the chosen rate's runs carry the mean and std over seeds in their model cards' model-index
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / f"lr{best:g}-seed2" / "README.md")
    mean = {r.metric_type: r.metric_value for r in card.data.eval_results}["accuracy_mean"]
    assert mean == pytest.approx(summary["summary"]["dev"]["accuracy"]["mean"])
    grid = summary["selection"]["grid"]
    assert summary["selection"]["best_learning_rate"] == float(max(grid, key=grid.get))
    accs = [r["eval"]["dev"]["accuracy"] for r in summary["runs"]]
    assert summary["summary"]["dev"]["accuracy"]["mean"] == pytest.approx(sum(accs) / 2)
    assert summary["summary"]["dev"]["accuracy"]["std"] == pytest.approx(abs(accs[0] - accs[1]) / 2 ** 0.5)
    saved = json.loads((out / "metrics.json").read_text())  # the summary records where it came from
    assert saved["provenance"]["machine"]["load_average_end"] is not None and "commit" in saved["provenance"]["git"]
    assert [r["train_examples"] for r in map(lambda d: json.loads((d / "metrics.json").read_text()),
                                             out.glob("lr*"))] == [40, 40, 40]

    # interrupted after the runs but before the summary: a rerun reuses every finished run
    (out / "metrics.json").unlink()
    import nlp_ssl.tasks.run_loop

    monkeypatch.setattr(nlp_ssl.tasks.run_loop, "run_one", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert main(config, data_dir)["summary"] == summary["summary"]


def test_regression_task(tmp_path, tiny_encoder_dir, data_dir):
    rename = {"score": "label"}  # a source given in full replaces the preset's (which renames the same way)
    task = {"preset": "stsb", "max_length": 64,
            "train": {"path": "glue/stsb/train.tsv", "max_examples": 200, "rename_columns": rename},
            "eval": {"dev": {"path": "glue/stsb/dev.tsv", "max_examples": 100, "rename_columns": rename}}}
    metrics = main(cfg(tmp_path, tiny_encoder_dir, task=task), data_dir)
    assert set(metrics["eval"]["dev"]) == {"pearson", "spearmanr"}
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "score"}


def test_self_training_adds_balanced_pseudo_labels(tmp_path, tiny_encoder_dir, data_dir):
    st = {"rounds": 2, "threshold": 0.5, "max_per_class": 30,
          "unlabeled": {"path": "glue/sst2/test.tsv", "text_column": "sentence", "max_examples": 300}}
    metrics = main(cfg(tmp_path, tiny_encoder_dir, max_train_samples=50, self_training=st,
                       train={"learning_rate": [3e-3], "num_train_epochs": 3}), data_dir)
    rounds = metrics["self_training"]
    assert [r["round"] for r in rounds] == [0, 1, 2] and rounds[0]["train_examples"] == 50
    for r in rounds[1:]:
        per_class = list(r["per_class"].values())
        assert per_class[0] == per_class[1] <= 30 and r["train_examples"] == 50 + r["pseudo_labels"]
        assert set(r["eval"]["dev"]) == {"accuracy"}


def test_bad_input_is_refused_before_anything_is_written(tmp_path, tiny_encoder_dir, data_dir):
    no_tok = tmp_path / "encoder-without-tokenizer"
    no_tok.mkdir()
    (no_tok / "config.json").write_text((tiny_encoder_dir / "config.json").read_text())
    with pytest.raises(NlpSslError, match="has no tokenizer"):
        main(cfg(tmp_path, no_tok), data_dir)
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\ngood\t1\nbad\t7\n")
    task = {**SST2_SLICE, "eval": {"dev": {"path": str(bad)}}}
    with pytest.raises(DataError, match="bad.tsv, line 3: label 7 is not in the declared set"):
        main(cfg(tmp_path, tiny_encoder_dir, task=task), data_dir)
    with pytest.raises(DataError, match=r"class\(es\) \['maybe'\] have no example"):
        main(cfg(tmp_path, tiny_encoder_dir, task={**SST2_SLICE, "labels": ["negative", "positive", "maybe"]},
                 max_train_samples=10), data_dir)
    assert not (tmp_path / "run").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_seeds_flag(tmp_path, tiny_encoder_dir, data_dir):
    import yaml

    from nlp_ssl.cli import main as cli

    path = tmp_path / "ft.yaml"
    path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "run"), "model": str(tiny_encoder_dir),
                                    "task": SST2_SLICE, "max_train_samples": 20,
                                    "train": {"num_train_epochs": 1, "logging_steps": 1000}}))
    assert cli(["finetune", str(path), "--seeds", "3,4", "--data-dir", data_dir]) == 0
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["seeds"] == [3, 4] and summary["summary"]["dev"]["accuracy"]["n"] == 2
    assert cli(["finetune", str(path), "task.preset=sst3", "--data-dir", data_dir]) == 3  # a config error


def test_sentence_pair_task_on_a_roberta_encoder_with_one_token_type(tmp_path, tiny_tokenizer_dir, data_dir):
    """RTE (sentence pairs, token types 0/1 from the `bert` template) on a RoBERTa encoder saved with one token
    type: fine-tuning used to stop with an IndexError in the token-type embedding."""
    from nlp_ssl.modeling import ModelConfig, hf_config, model_class
    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    config = hf_config(ModelConfig(arch="roberta", num_layers=1, hidden_size=32, num_heads=2, intermediate_size=64,
                                   max_position_embeddings=256), tok)
    config.type_vocab_size = 1  # as RoBERTa encoders were built before
    torch.manual_seed(0)
    encoder = tmp_path / "roberta-1-type"
    model_class("roberta", sparse=False)(config).save_pretrained(str(encoder))
    tok.save_pretrained(str(encoder))
    rte = {"preset": "rte", "max_length": 64, "train": {"path": "glue/rte/train.tsv", "max_examples": 64},
           "eval": {"dev": {"path": "glue/rte/dev.tsv", "max_examples": 32}}}
    metrics = main(cfg(tmp_path, encoder, task=rte, train={"max_steps": 2, "num_train_epochs": 1}), data_dir)
    assert metrics["steps"] == 2 and 0 <= metrics["eval"]["dev"]["accuracy"] <= 1
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["type_vocab_size"] == 2


@pytest.mark.slow  # one short fine-tune, then `nlp-ssl evaluate` under two accelerate ranks (about a minute)
def test_two_ranks_evaluate_to_the_same_predictions_as_one_process(tmp_path, tiny_encoder_dir, data_dir):
    """`accelerate launch -m nlp_ssl evaluate`: the two ranks share the prediction (tasks.inference.predict) and
    gather it in order; the predictions file and the scores are one process's."""
    import os
    import socket
    from pathlib import Path

    main(cfg(tmp_path, tiny_encoder_dir, train={"max_steps": 5}), data_dir)
    model = tmp_path / "run"
    one = evaluate(from_dict(EvaluateConfig, {"model": str(model), "output_dir": str(tmp_path / "one")}), data_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run([str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
                        str(repo / "configs/accelerate/cpu-2proc.yaml"), "--main_process_port", port, "-m", "nlp_ssl",
                        "evaluate", str(model), f"output_dir={tmp_path / 'two'}"],
                       capture_output=True, text=True, timeout=600, cwd=repo,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo), "NLP_SSL_DATA_DIR": str(data_dir)})
    assert r.returncode == 0, r.stderr[-3000:]
    # the ranks formed one group of two (so predict shared the examples), and rank 0 alone reported and wrote
    assert len(re.findall(r"dev \([\d,]+ examples, 2 ranks\)", r.stdout)) == 1, r.stdout[-3000:]
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["eval"] == one["eval"]  # the same predictions, the same scores
    assert (tmp_path / "two" / "predictions-dev.jsonl").read_text() == (tmp_path / "one" / "predictions-dev.jsonl").read_text()
