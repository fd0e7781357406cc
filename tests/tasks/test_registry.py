"""The task registry: every built-in task declares what it is, configs pick their class through it, and a new task
registered from its own file (tests/tasks/toy_task.py) runs end to end through `nlp-ssl finetune` and `evaluate`."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from nlp_ssl.errors import ConfigError
from nlp_ssl.tasks.registry import TASKS, spec_for_config, spec_for_model, task_spec


def test_builtin_tasks_declare_config_head_card_facts_and_report():
    qa, cls, reg = task_spec("extractive_qa"), task_spec(None), task_spec("regression")
    assert cls.name == "classification" and cls.config_class() is reg.config_class()  # one implementation
    assert spec_for_config({"task": {"type": "extractive_qa"}}).config_class().__name__ == "QAFinetuneConfig"
    assert (qa.artifact.auto_class, qa.artifact.pipeline_tag) == ("AutoModelForQuestionAnswering", "question-answering")
    assert cls.artifact.auto_class == "AutoModelForSequenceClassification"
    assert qa.metric_names({"preset": "squad_v2"}) == ["exact", "f1", "HasAns_f1", "NoAns_f1"]
    assert qa.metric_names({"version": "v1"}) == ["exact_match", "f1"]
    assert cls.metric_names({"preset": "cola"}) == ["matthews_correlation", "accuracy"]
    assert reg.metric_names({"type": "regression"}) == ["pearson", "spearmanr"]
    assert (cls.report.pct, reg.report.pct, qa.report.pct, qa.report.metric) == (True, False, False, "f1")
    assert qa.predict is None and "nlp-ssl answer" in qa.predict_instead
    with pytest.raises(ConfigError, match="did you mean 'extractive_qa'"):
        task_spec("extractive_qq")


def test_a_saved_model_is_recognised_by_its_recorded_task_or_its_head(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForQuestionAnswering"]}))
    assert spec_for_model(tmp_path).name == "extractive_qa"
    assert spec_for_model(tmp_path, {"type": "sts_zero_shot"}).name == "sts_zero_shot"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    assert spec_for_model(tmp_path).name == "classification"


def tiny_bert(out: Path) -> Path:
    """A tiny random BERT and a word-level tokenizer over the toy task's words, saved as any HF encoder is."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    words = sorted(set(" ".join(importlib.import_module("toy_task").sentences()).split()))
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    import torch

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32, max_position_embeddings=32, pad_token_id=0))
    model.save_pretrained(str(out))
    fast.save_pretrained(str(out))
    return out


@pytest.fixture
def toy_task(monkeypatch):
    """The toy task, imported from its own file (which registers it); unregistered afterwards."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    module = importlib.import_module("toy_task")
    yield module
    TASKS.pop("length_parity", None)
    sys.modules.pop("toy_task", None)


def test_a_task_registered_from_its_own_file_runs_end_to_end(tmp_path, toy_task):
    from nlp_ssl.cli import main as cli
    from nlp_ssl.cli import run

    encoder = tiny_bert(tmp_path / "encoder")
    out = tmp_path / "parity"
    summary = run("finetune", {"output_dir": str(out), "model": str(encoder), "task": {"type": "length_parity"},
                               "seed": [1, 2], "train": {"learning_rate": [1e-3, 3e-3], "max_steps": 3,
                                                         "per_device_train_batch_size": 8, "logging_steps": 100,
                                                         "eval_steps": 1}})
    # the grid on the first seed, then both seeds at the chosen rate; mean and std over the seeds
    assert set(summary["selection"]["grid"]) == {"0.001", "0.003"} and summary["selection"]["split"] == "selection"
    best = summary["selection"]["best_learning_rate"]
    dev = summary["summary"]["dev"]["accuracy"]
    accs = [r["eval"]["dev"]["accuracy"] for r in summary["runs"]]
    assert dev["n"] == 2 and dev["mean"] == pytest.approx(sum(accs) / 2)
    assert dev["std"] == pytest.approx(abs(accs[0] - accs[1]) / 2 ** 0.5)
    assert json.loads((out / "metrics.json").read_text())["summary"] == summary["summary"]
    cells = sorted(p.name for p in out.iterdir() if p.name.startswith("lr"))
    assert cells == sorted({"lr0.001-seed1", "lr0.003-seed1", f"lr{best:g}-seed2"})
    cell = out / f"lr{best:g}-seed2"
    info = json.loads((cell / "run_info.json").read_text())
    assert info["artifact"] == toy_task.SPEC.artifact.to_dict() and info["metric_names"] == ["accuracy"]
    assert (cell / "learning_curve.json").is_file() and (cell / "predictions-dev.jsonl").is_file()
    assert (cell / "README.md").is_file() and (cell / "model.safetensors").is_file()

    # evaluate finds the task through the registry (the saved config.yaml's task.type) and scores the same
    scored = run("evaluate", {"model": str(cell)})
    assert scored["eval"]["dev"]["accuracy"] == pytest.approx(json.loads((cell / "metrics.json").read_text())
                                                             ["eval"]["dev"]["accuracy"])
    # the command line picks the task's config class from task.type as well
    assert cli(["finetune", "--print-config", "task.type=length_parity"]) == 0


def _plugin_path(tmp_path: Path) -> Path:
    """A directory that makes the toy task an installed plug-in: its module plus a dist-info with the entry point
    (what `pip install` of a package declaring `[project.entry-points."nlp_ssl.tasks"]` leaves on sys.path)."""
    import shutil

    site = tmp_path / "site"
    dist = site / "nlp_ssl_toy-0.1.dist-info"
    dist.mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "toy_task.py", site / "toy_task.py")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: nlp-ssl-toy\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nlp_ssl.tasks]\nlength_parity = toy_task\n")
    return site


def test_an_installed_plugin_task_is_found_by_a_fresh_command(tmp_path):
    """`nlp-ssl finetune` in a new process finds a task installed as an entry point, and says how when it is not."""
    import os
    import subprocess

    cmd = [sys.executable, "-m", "nlp_ssl", "finetune", "--print-config", "task.type=length_parity",
           "output_dir=x", "model=y"]
    env = {**os.environ, "PYTHONPATH": str(_plugin_path(tmp_path))}
    found = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert found.returncode == 0, found.stderr[-2000:]
    assert "type: length_parity" in found.stdout and "ParityConfig" not in found.stderr
    env["PYTHONPATH"] = str(tmp_path / "elsewhere")
    missing = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert missing.returncode == 3 and "unknown task 'length_parity'" in missing.stderr
    assert "nlp_ssl.tasks' entry point" in missing.stderr
