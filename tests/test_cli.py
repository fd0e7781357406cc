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

    assert recipe_for("finetune", {"task": {"type": "extractive_qa"}}) == ("nlp_ssl.recipes.finetune_qa", "QAFinetuneConfig")
    assert recipe_for("finetune", {"task": {"preset": "sst2"}}) == ("nlp_ssl.recipes.finetune", "FinetuneConfig")
    cfg, run = build_config("finetune", {"output_dir": "o", "model": "m", "task": {"type": "extractive_qa", "preset": "squad"}})
    assert type(cfg).__name__ == "QAFinetuneConfig" and run.__module__ == "nlp_ssl.recipes.finetune_qa"


def test_no_recipe_or_benchmark_imports_a_recipe():
    """Recipes are wiring: a helper another module needs is a component (nlp_ssl/...), never a recipe."""
    import re

    pattern = re.compile(r"^\s*(from nlp_ssl\.recipes[\w.]* import|import nlp_ssl\.recipes)", re.M)
    files = list((REPO / "nlp_ssl").rglob("*.py")) + list((REPO / "benchmarks").rglob("*.py"))
    offenders = [str(f.relative_to(REPO)) for f in files if pattern.search(f.read_text())]
    assert offenders == []
