"""The run-directory layout: every file name a run writes, the name of a grid cell, and reading a finished run.

One module owns these names, so `report`, model cards, plots and `benchmarks/` read runs the same way the recipes
write them. A fine-tuning run with one rate and one seed is itself a model directory; a grid writes one model
directory per cell (`lr<rate>-seed<seed>/`) and a summary `metrics.json` beside them.

Readers of a finished run: `read_json` (an error naming the file when one is truncated or not JSON), `is_run`
and `read_run` (a `FinishedRun`: its metrics, config, run info, grid cells and kind).

Example:
    >>> cell_name(1e-4, 2)
    'lr0.0001-seed2'
    >>> parse_cell("lr0.0001-seed2")
    (0.0001, 2)
    >>> run = read_run("runs/quickstart/sst2")  # doctest: +SKIP
    >>> run.kind, [c.name for c in run.cells][:1]  # doctest: +SKIP
    ('grid', ['lr0.0001-seed1'])
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nlp_ssl.artifact import Artifact
from nlp_ssl.errors import DataError

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


# ----------------------------------------------------------------------------------------------------------
# Reading a finished run

_REQUIRED = object()


def read_json(path: str | Path, default: Any = _REQUIRED) -> Any:
    """The JSON in `path`; `default` when the file does not exist (if given).

    Raises:
        DataError: the file is missing (and no default), unreadable, or not valid JSON (a truncated write, a hand
            edit): the message names the file and where the JSON breaks.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if default is not _REQUIRED:
            return default
        raise DataError(f"{path} does not exist; is {path.parent} a finished nlp-ssl run?") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path} cannot be read ({e}); check the file") from None
    try:
        return json.loads(text)
    except ValueError as e:
        what = "is empty" if not text.strip() else f"is not valid JSON ({e})"
        raise DataError(f"{path} {what}: the file is truncated or was edited; restore it or run again the command "
                        "that wrote it") from None


def read_jsonl(path: str | Path) -> list[Any]:
    """One JSON value per non-empty line; an error naming the file and line when one is not JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path} cannot be read ({e}); check the file") from None
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                raise DataError(f"{path}, line {i}: not valid JSON ({e}); the file is truncated or was edited; "
                                "restore it or run again the command that wrote it") from None
    return rows


def read_config(path: str | Path) -> dict[str, Any]:
    """A run's config.yaml as plain data ({} when the run has none); an error naming the file when it is not YAML."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise DataError(f"{path} is not a readable YAML config ({e}); restore it or run again the command that "
                        "wrote it") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DataError(f"{path} holds a {type(data).__name__}, not a config mapping; restore it")
    return data


def is_run(path: str | Path) -> bool:
    """Whether `path` holds a finished run of any command (its metrics.json, or a tokenizer's summary)."""
    p = Path(path)
    return (p / METRICS_FILE).is_file() or (p / TOKENIZER_SUMMARY_FILE).is_file()


@dataclass
class FinishedRun:
    """What a finished run directory holds, read the way the commands wrote it.

    Attributes:
        path: the run directory.
        kind: `tokenizer`, `pretrain`, `grid` (a fine-tuning run over rates x seeds: cells and a summary),
            `finetune` (one model directory: a grid's cell, or a run of one rate and one seed) or `other`.
        metrics: metrics.json ({} for a tokenizer, whose figures are in `summary`).
        config: config.yaml as plain data ({} when absent).
        run_info: run_info.json ({} when absent).
        cells: a grid's cell directories, sorted by (rate, seed).
        summary: tokenizer_summary.json (tokenizer runs only).
    """

    path: Path
    kind: str
    metrics: dict[str, Any]
    config: dict[str, Any]
    run_info: dict[str, Any]
    cells: list[Path] = field(default_factory=list)
    summary: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def task(self) -> dict[str, Any]:
        """The config's `task` section ({} for runs without one)."""
        return self.config.get("task") or {}

    @cached_property
    def artifact(self) -> Artifact | None:
        """What the saved model is (run_info.json["artifact"]), when the run recorded it."""
        return Artifact.from_dict(self.run_info.get("artifact"))

    def cell(self, learning_rate: float, seed: int) -> Path:
        """The directory of one grid cell (it may not exist)."""
        return self.path / cell_name(learning_rate, seed)

    def log_history(self) -> list[dict] | None:
        """What the Trainer logged (None when the run kept no log)."""
        history = read_json(self.path / LOG_HISTORY_FILE, None)
        return history if isinstance(history, list) else None

    def learning_curve(self) -> dict | None:
        """Selection-split scores during fine-tuning (None when the run scored none)."""
        return read_json(self.path / LEARNING_CURVE_FILE, None)

    def predictions(self, split: str) -> list[dict] | None:
        """The rows of predictions-<split>.jsonl (None when the run saved none)."""
        path = self.path / predictions_file(split)
        return read_jsonl(path) if path.is_file() else None


def run_kind(metrics: dict, run_info: dict, tokenizer: bool = False) -> str:
    """The kind of run that wrote these files (see FinishedRun.kind)."""
    if tokenizer:
        return "tokenizer"
    if run_info.get("command") == "pretrain" or "tokens_seen" in metrics:
        return "pretrain"
    if "runs" in metrics and "selection" in metrics:
        return "grid"
    if "eval" in metrics:
        return "finetune"
    return "other"


def read_run(path: str | Path) -> FinishedRun:
    """Read a finished run directory (see `is_run`).

    Raises:
        DataError: `path` holds no finished run, or one of its files is truncated or malformed (named).
    """
    p = Path(path)
    if not is_run(p):
        raise DataError(f"{p} holds no finished nlp-ssl run (no {METRICS_FILE} or {TOKENIZER_SUMMARY_FILE}); give "
                        "the output_dir of a run that finished")
    tokenizer = (p / TOKENIZER_SUMMARY_FILE).is_file()
    metrics = read_json(p / METRICS_FILE, {})
    info = read_json(p / RUN_INFO_FILE, {})
    if not isinstance(metrics, dict) or not isinstance(info, dict):
        bad = METRICS_FILE if not isinstance(metrics, dict) else RUN_INFO_FILE
        raise DataError(f"{p / bad} holds no JSON object; restore it or run again the command that wrote it")
    kind = run_kind(metrics, info, tokenizer)
    return FinishedRun(p, kind, metrics, read_config(p / CONFIG_FILE), info,
                       grid_cells(p) if kind == "grid" else [],
                       read_json(p / TOKENIZER_SUMMARY_FILE) if tokenizer else None)
