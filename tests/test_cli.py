from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_help_and_config_errors_do_not_import_heavy_libraries():
    """`nlp-ssl --help` and a config error must not pay for torch/transformers/datasets imports."""
    code = (
        "import sys\n"
        "from nlp_ssl.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "rc = main(['prepare', 'configs/quickstart/prepare.yaml', 'block_sise=64'])\n"
        "rc2 = main(['finetune', 'configs/finetune/rte-bert-tiny-cpu.yaml', 'task.text_columns=[sentence1]'])\n"
        "rc3 = main(['finetune', 'configs/finetune/squad-bert-tiny-cpu.yaml', 'task.doc_stride=500'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'tokenizers', 'evaluate', 'matplotlib') if m in sys.modules]\n"
        "print('RC', rc, rc2, rc3, 'HEAVY', heavy)\n"
    )
    r = _run(code)
    assert "RC 3 3 3 HEAVY []" in r.stdout, r.stdout + r.stderr
    assert "block_sise: unknown key; did you mean 'block_size'?" in r.stderr
    assert "rte is a sentence-pair task and needs 2 column(s)" in r.stderr  # checked before any data is read
    assert "doc_stride: 500 leaves no room" in r.stderr


def test_console_script_reports_errors_without_traceback(tmp_path):
    r = subprocess.run([str(Path(sys.executable).parent / "nlp-ssl"), "train-tokenizer", str(tmp_path / "none.yaml")],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 3  # config error
    assert "config file not found" in r.stderr and "Traceback" not in r.stderr


def test_finetune_runs_the_recipe_its_task_calls_for():
    from nlp_ssl.cli import build_config, recipe_for

    assert recipe_for("finetune", {"task": {"type": "extractive_qa"}}) == ("nlp_ssl.tasks.qa_finetune", "QAFinetuneConfig")
    assert recipe_for("finetune", {"task": {"preset": "sst2"}}) == ("nlp_ssl.tasks.classification_finetune",
                                                                    "FinetuneConfig")
    cfg, run = build_config("finetune", {"output_dir": "o", "model": "m", "task": {"type": "extractive_qa", "preset": "squad"}})
    assert type(cfg).__name__ == "QAFinetuneConfig" and run.__module__ == "nlp_ssl.recipes.finetune"  # one loop


def test_no_recipe_or_benchmark_imports_a_recipe():
    """Recipes are wiring: a helper another module needs is a component (nlp_ssl/...), never a recipe."""
    import re

    pattern = re.compile(r"^\s*(from nlp_ssl\.recipes[\w.]* import|import nlp_ssl\.recipes)", re.M)
    files = list((REPO / "nlp_ssl").rglob("*.py")) + list((REPO / "benchmarks").rglob("*.py"))
    offenders = [str(f.relative_to(REPO)) for f in files if pattern.search(f.read_text())]
    assert offenders == []


def test_version():
    from nlp_ssl import __version__

    r = subprocess.run([sys.executable, "-m", "nlp_ssl", "--version"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"nlp-ssl {__version__}", r.stdout + r.stderr


def test_print_config_shows_every_key_its_value_default_and_description_and_runs_nothing(capsys):
    """`--print-config CONFIG key=value` prints the resolved config (bases and overrides applied) as YAML that loads
    back to the same config; each key carries `(default X) description` from the dataclass docstrings. It
    imports no heavy library (nothing runs)."""
    code = (
        "import sys\n"
        "from nlp_ssl.cli import main\n"
        "rc = main(['finetune', '--print-config', 'configs/finetune/rte-bert-tiny-cpu.yaml', 'train.max_steps=7'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'tokenizers') if m in sys.modules]\n"
        "print('RC', rc, 'HEAVY', heavy)\n"
    )
    r = _run(code)
    assert "RC 0 HEAVY []" in r.stdout, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "# nlp-ssl finetune --print-config configs/finetune/rte-bert-tiny-cpu.yaml train.max_steps=7"
    assert "base" not in [line.split(":")[0] for line in lines]  # resolved: the base is merged in
    step = next(line for line in lines if line.strip().startswith("max_steps:"))
    assert step.startswith("  max_steps: 7 ") and "# (default -1) optimizer steps (-1: use num_train_epochs)." in step
    lr = next(line for line in lines if line.strip().startswith("learning_rate:"))
    assert "(default 0.0001) peak learning rate; or a list of rates, a grid" in lr
    assert next(line for line in lines if line.startswith("output_dir:")).split("#")[1].strip().startswith("(required)")

    import yaml

    from nlp_ssl.cli import resolve_config
    from nlp_ssl.config import dump_yaml

    cfg, _ = resolve_config("finetune", "configs/finetune/rte-bert-tiny-cpu.yaml", ["train.max_steps=7"])
    assert yaml.safe_load(r.stdout[r.stdout.index("output_dir:"):r.stdout.index("RC 0")]) == yaml.safe_load(dump_yaml(cfg))


def test_print_config_without_a_config_shows_the_defaults(capsys):
    from nlp_ssl.cli import main

    assert main(["pretrain", "--print-config", "train.max_time_minutes=25"]) == 0
    out = capsys.readouterr().out
    assert "output_dir: null" in out and "(required)" in out  # required keys are null: no config named them
    assert [line for line in out.splitlines() if line.startswith("  max_time_minutes: 25")]
    assert [line for line in out.splitlines() if line.startswith("  per_device_train_batch_size: 64 ")]
    assert main(["finetune", "--print-config", "task.type=extractive_qa"]) == 0  # the QA keys
    assert "doc_stride" in capsys.readouterr().out
    assert main(["pretrain", "--print-config", "train.max_step=5"]) == 3  # overrides are checked as always
    assert "train.max_step: unknown key; did you mean 'train.max_steps'?" in capsys.readouterr().err


def test_every_config_key_has_a_description():
    """--print-config reads each key's description from its class docstring (`Attributes:`): none may be missing."""
    import dataclasses
    import importlib
    import typing

    from nlp_ssl.cli import COMMANDS
    from nlp_ssl.config import _dataclass_of, field_docs

    seen, missing = set(), []

    def walk(cls):
        if cls in seen:
            return
        seen.add(cls)
        docs = field_docs(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.init and not docs.get(f.name):
                missing.append(f"{cls.__name__}.{f.name}")
            tp = hints[f.name]
            for t in [tp, *typing.get_args(tp), *[a for arg in typing.get_args(tp) for a in typing.get_args(arg)]]:
                sub = _dataclass_of(t)
                if sub is not None:
                    walk(sub)

    roots = [getattr(importlib.import_module(m), c) for m, c, _ in COMMANDS.values()]
    from nlp_ssl.tasks.registry import TASKS

    roots += [spec.config_class() for spec in TASKS.values() if spec.config]
    for cls in roots:
        walk(cls)
    assert len(seen) >= 10 and missing == []
