"""The run-directory layout: every file name a run writes, the name of a grid cell, and reading a finished run.

One module owns these names, so `report`, model cards, plots and `benchmarks/` read runs the same way the recipes
write them. A fine-tuning run with one rate and one seed is itself a model directory; a grid writes one model
directory per cell (`lr<rate>-seed<seed>/`) and a summary `metrics.json` beside them.

Example:
    >>> cell_name(1e-4, 2)
    'lr0.0001-seed2'
    >>> parse_cell("lr0.0001-seed2")
    (0.0001, 2)
"""

from __future__ import annotations

import re
from pathlib import Path

METRICS_FILE = "metrics.json"  # a run's figures (a grid: the summary over its cells)
CONFIG_FILE = "config.yaml"  # the resolved config (runinfo.write_run_info)
RUN_INFO_FILE = "run_info.json"  # command, versions, git revision, machine, and the artifact's facts
LOG_HISTORY_FILE = "log_history.json"  # what the Trainer logged
LEARNING_CURVE_FILE = "learning_curve.json"  # selection-split scores during fine-tuning
TOKENIZER_SUMMARY_FILE = "tokenizer_summary.json"  # written by `nlp-ssl train-tokenizer`
CHECKPOINTS_DIR = "checkpoints"  # mid-run checkpoints (removed once a fine-tuning run is saved)
TIME_BUDGET_FILE = "time_budget.json"  # elapsed training seconds, saved in each pretraining checkpoint
PLOTS_DIR = "plots"
TENSORBOARD_DIR = "tensorboard"
CARD_FILE = "README.md"

_CELL = re.compile(r"^lr(?P<lr>[0-9.eE+-]+)-seed(?P<seed>-?\d+)$")


def cell_name(learning_rate: float, seed: int) -> str:
    """The folder of one grid cell (one rate, one seed) inside a fine-tuning output_dir."""
    return f"lr{learning_rate:g}-seed{seed}"


def parse_cell(name: str) -> tuple[float, int] | None:
    """(rate, seed) of a grid cell's folder name, or None for any other name."""
    m = _CELL.match(name)
    if not m:
        return None
    try:
        return float(m["lr"]), int(m["seed"])
    except ValueError:
        return None


def grid_cells(out_dir: str | Path) -> list[Path]:
    """The cell folders of a grid run, sorted by (rate, seed)."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    cells = [(parse_cell(p.name), p) for p in out.iterdir() if p.is_dir()]
    return [p for key, p in sorted((c for c in cells if c[0] is not None), key=lambda c: c[0])]


def predictions_file(split: str, suffix: str = ".jsonl") -> str:
    """Per-example predictions of one evaluation split."""
    return f"predictions-{split}{suffix}"
