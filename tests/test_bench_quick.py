"""Every benchmark's --quick check runs end to end, so none rots: it measures every row of its table on a tiny
model and a slice of the data, and writes a results file (under runs/bench/quick, never over a result)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
QUICK = REPO / "runs" / "bench" / "quick"

# script, flags, results file, table, rows it must have
CASES = [
    ("bench_pretrain.py", [], "bench_pretrain", "throughput", 6),
    ("bench_pretrain.py", ["--quality"], "bench_pretrain-quality", "quality", 2),
    ("bench_finetune.py", [], "bench_finetune", "throughput", 3),
    ("bench_prepare.py", [], "bench_prepare", "throughput", 4),
    ("bench_prepare.py", ["--scaling"], "bench_prepare-scaling", "scaling", 2),
    ("bench_prepare.py", ["--tokenizer"], "bench_prepare-tokenizer", "tokenizer", 4),
    pytest.param("bench_scale.py", [], "bench_scale", "scale", 3,
                 marks=pytest.mark.slow),  # two accelerate ranks and two launches, as the other slow tests
]


@pytest.mark.parametrize("script, flags, name, table, n_rows", CASES)
def test_quick_check_measures_every_row_and_writes_its_results(data_dir, script, flags, name, table, n_rows):
    result = QUICK / f"{name}.json"
    result.unlink(missing_ok=True)
    env = {**os.environ, "NLP_SSL_DATA_DIR": data_dir}
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--quick", *flags], capture_output=True,
                       text=True, cwd=REPO, env=env, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    record = json.loads(result.read_text())
    assert record["quick"] is True and record["command"].endswith(" ".join([script, "--quick", *flags]))
    rows = record["tables"][table]["rows"]
    assert len(rows) == n_rows and all(len(row) == len(record["tables"][table]["headers"]) for row in rows)
    assert record["provenance"]["machine"]["load_average_end"] is not None
