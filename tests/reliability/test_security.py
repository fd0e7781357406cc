"""Security properties that hold and must keep holding: no pickle loading, no remote code, no shell, safe YAML;
secrets never land in an output file."""

from __future__ import annotations

import ast
import json
import secrets
import string
import sys
from pathlib import Path

import pytest
import yaml

from nlp_ssl.config import from_dict
from nlp_ssl.runinfo import REDACTED, redact_argv, write_run_info

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for d in ("nlp_ssl", "scripts", "benchmarks") for p in (REPO / d).rglob("*.py"))
SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "_StrictLoader"}


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield node, owner, name


def test_sources_load_no_pickle_run_no_remote_code_and_no_shell():
    assert len(SOURCES) > 20
    problems = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(REPO)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and n.split(".")[0] in ("pickle", "dill", "cloudpickle", "marshal") for n in names):
                    problems.append(f"{where}:{node.lineno}: imports a pickle module")
        for node, owner, name in _calls(tree):
            kw = {k.arg: k.value for k in node.keywords}
            if "trust_remote_code" in kw and not (isinstance(kw["trust_remote_code"], ast.Constant)
                                                 and kw["trust_remote_code"].value is False):
                problems.append(f"{where}:{node.lineno}: trust_remote_code")
            if "shell" in kw and not (isinstance(kw["shell"], ast.Constant) and kw["shell"].value is False):
                problems.append(f"{where}:{node.lineno}: shell=")
            builtin = isinstance(node.func, ast.Name) and name in ("eval", "exec")
            if (owner, name) in (("os", "system"), ("os", "popen"), ("torch", "load")) or builtin:
                problems.append(f"{where}:{node.lineno}: {owner + '.' if owner else ''}{name}()")
            if (owner, name) == ("yaml", "load"):
                loader = kw.get("Loader")
                if not (isinstance(loader, (ast.Name, ast.Attribute)) and
                        (getattr(loader, "id", None) or getattr(loader, "attr", None)) in SAFE_LOADERS):
                    problems.append(f"{where}:{node.lineno}: yaml.load without a safe loader")
    assert problems == []


def test_strict_yaml_loader_is_a_safe_loader(tmp_path):
    from nlp_ssl.config import _StrictLoader, read_yaml

    assert issubclass(_StrictLoader, yaml.SafeLoader)
    evil = tmp_path / "evil.yaml"
    evil.write_text("a: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(Exception, match="could not determine a constructor|YAML"):
        read_yaml(evil)


def test_command_line_secrets_are_redacted():
    argv = ["nlp-ssl", "finetune", "c.yaml", "hub.token=abc123", "--hf-token", "s3cret", "password=pw",
            "api_key=k", "HF_TOKEN=hf_" + "x" * 30, "model=hf_" + "a" * 34, "train.learning_rate=[1e-4]",
            "--data-dir", "/data", "max_tokens=5"]
    out = redact_argv(argv)
    assert out == ["nlp-ssl", "finetune", "c.yaml", f"hub.token={REDACTED}", "--hf-token", REDACTED,
                   f"password={REDACTED}", f"api_key={REDACTED}", f"HF_TOKEN={REDACTED}", f"model={REDACTED}",
                   "train.learning_rate=[1e-4]", "--data-dir", "/data", f"max_tokens={REDACTED}"]


def test_planted_hf_token_appears_in_no_output_file(tmp_path, monkeypatch, capsys, tiny_tokenizer_dir, wiki_slice):
    """HF_TOKEN in the environment and a token on the command line: every file the commands write (run
    dirs, run_info, logs, TensorBoard events, model cards, predictions) and the console are free of it."""
    from nlp_ssl.recipes.finetune import FinetuneConfig
    from nlp_ssl.recipes.finetune import main as finetune
    from nlp_ssl.recipes.prepare import PrepareConfig
    from nlp_ssl.recipes.prepare import main as prepare
    from nlp_ssl.recipes.pretrain import PretrainConfig
    from nlp_ssl.recipes.pretrain import main as pretrain

    token = "hf_" + "".join(secrets.choice(string.ascii_letters) for _ in range(34))
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", token)
    monkeypatch.setattr(sys, "argv", ["nlp-ssl", "pretrain", "c.yaml", f"hub_token={token}", "--token", token])
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    blocks = tmp_path / "blocks"
    prepare(from_dict(PrepareConfig, {"output_dir": str(blocks), "tokenizer": str(tiny_tokenizer_dir),
                                      "data": {"path": str(wiki_slice), "max_examples": 20}, "block_size": 32, "validation_fraction": 0.2,
                                      "progress": False, "num_proc": 1}))
    enc = tmp_path / "enc"
    pretrain(from_dict(PretrainConfig, {
        "output_dir": str(enc), "data": str(blocks),
        "model": {"arch": "bert", "preset": "tiny", "num_layers": 1, "hidden_size": 32, "num_heads": 2,
                  "intermediate_size": 64},
        "train": {"per_device_train_batch_size": 8, "max_steps": 2, "eval_steps": 1, "save_steps": 1, "logging_steps": 1,
                  "max_eval_samples": 8, "report_to": ["tensorboard"]}}))
    data = tmp_path / "cls.csv"
    data.write_text("text,label\n" + "".join(f"{'good' if i % 2 else 'bad'} film {i},{'pos' if i % 2 else 'neg'}\n"
                                             for i in range(40)))
    src = {"path": str(data)}
    finetune(from_dict(FinetuneConfig, {
        "output_dir": str(tmp_path / "clf"), "model": str(enc),
        "task": {"train": src, "eval": {"dev": src}, "text_columns": ["text"], "label_column": "label",
                 "metrics": ["accuracy"], "max_length": 16},
        "train": {"learning_rate": [1e-3], "per_device_train_batch_size": 8, "max_steps": 2, "logging_steps": 1,
                  "report_to": ["tensorboard"]}}))
    write_run_info(tmp_path / "info", {"a": 1}, "test")

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("tfevents" in p.name for p in files) and any(p.name == "run_info.json" for p in files)
    assert any(p.name == "README.md" for p in files)  # model cards
    leaked = [str(p) for p in files if token.encode() in p.read_bytes()]
    assert leaked == []
    out = capsys.readouterr()
    assert token not in out.out and token not in out.err
    info = json.loads((enc / "run_info.json").read_text())
    assert REDACTED in info["argv"]
