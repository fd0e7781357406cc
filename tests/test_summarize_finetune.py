"""benchmarks/summarize_finetune.py --json: the figures' table with every run's and the encoder's provenance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_figures_json_carries_each_runs_provenance_and_the_encoder(tmp_path):
    prov = {"git": {"commit": "abc", "dirty": False}, "machine": {"cores": 2, "load_average_start": [1.0, 1.0, 1.0],
                                                                "load_average_end": [2.0, 2.0, 2.0]}}
    run = tmp_path / "figures" / "imdb-100-pretrained"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "init": "pretrained", "max_train_samples": 100, "report_split": "test",
        "selection": {"metric": "accuracy", "grid": {"0.0001": 0.6}, "best_learning_rate": 1e-4, "oracle": False},
        "summary": {"test": {"accuracy": {"mean": 0.6, "std": 0.01, "n": 2}}},
        "runs": [{"eval": {"test": {"accuracy": 0.59}}}, {"eval": {"test": {"accuracy": 0.61}}}],
        "provenance": prov}))
    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "metrics.json").write_text(json.dumps({"steps": 2500, "tokens_seen": 20480000, "eval_loss": 5.94,
                                                  "provenance": prov}))
    (enc / "run_info.json").write_text(json.dumps({"git": {"commit": "b36293e", "dirty": False}}))
    out = tmp_path / "figures.json"
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "summarize_finetune.py"), str(tmp_path / "figures"),
                          "--encoder", str(enc), "--json", str(out)], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "60.0 ± 1.0" in res.stdout and "59.0 61.0" in res.stdout
    record = json.loads(out.read_text())
    assert record["runs"]["imdb-100-pretrained"]["provenance"] == prov
    assert record["encoder"]["steps"] == 2500 and record["encoder"]["tokens_seen"] == 20480000
    assert record["encoder"]["run_info"]["git"] == {"commit": "b36293e", "dirty": False}
    assert record["tables"]["classification"]["rows"][0][4] == "60.0 ± 1.0"
    assert len(record["tabulated_at"]["git"]) == 2
