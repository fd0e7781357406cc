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
