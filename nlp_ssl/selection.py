"""Choosing a learning rate and summarising seeds: a grid on the first seed scored on the selection split, then
every seed at the chosen rate; summary = mean and sample standard deviation over seeds.

What is chosen on must not be what is reported: the grid reads only `selection_split`, and the headline figure is
`report_split`. When a config makes them the same split, the summary says so (`oracle: true`), because a figure
chosen on the data it reports is optimistic.

Example:
    >>> result = run_grid([1e-4, 3e-4], seeds=[1, 2, 3], run=train_and_score, score=lambda m: m["eval"]["sel"]["accuracy"])
    >>> result.best_learning_rate, len(result.runs)
    (0.0003, 3)
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from nlp_ssl.outputs import METRICS_FILE


def aggregate(runs: list[dict[str, Any]], key: str = "eval") -> dict[str, dict[str, dict[str, float]]]:
    """{split: {metric: {mean, std, n}}} over runs (std: sample standard deviation; 0 for one run)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split in runs[0][key]:
        out[split] = {}
        for metric in runs[0][key][split]:
            values = [r[key][split][metric] for r in runs]
            out[split][metric] = {"mean": statistics.fmean(values),
                                  "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}
    return out


def best_learning_rate(scores: dict[float, float]) -> float:
    """The rate with the highest selection score (NaN scores lose; ties: the first rate in the grid)."""
    return max(scores, key=lambda lr: -math.inf if math.isnan(scores[lr]) else scores[lr])


@dataclass
class GridResult:
    """scores: selection score per rate (first seed); grid: each rate's run; runs: every seed at the best rate."""

    best_learning_rate: float
    scores: dict[float, float]
    grid: dict[float, dict[str, Any]]
    runs: list[dict[str, Any]]


def grid_extension(scores: dict[float, float]) -> float | None:
    """The next rate to try when the best of a grid (>= 2 rates) sits at its edge, else None: one geometric
    step beyond that edge, the step being the ratio between the edge rate and its neighbour.

    Example:
        >>> grid_extension({1e-4: 0.80, 3e-4: 0.82, 1e-3: 0.85})   # best at the top edge -> 1e-3 x (1e-3 / 3e-4)
        0.0033333333333333335
        >>> grid_extension({1e-4: 0.80, 3e-4: 0.86, 1e-3: 0.85}) is None
        True
    """
    valid = {lr: s for lr, s in scores.items() if not math.isnan(s)}
    if len(scores) < 2 or not valid:
        return None
    rates = sorted(scores)
    best = max(valid, key=valid.get)
    if best == rates[-1]:
        return rates[-1] * (rates[-1] / rates[-2])
    if best == rates[0]:
        return rates[0] * (rates[0] / rates[1])
    return None


def run_grid(learning_rates: list[float], seeds: list[int], run: Callable[[float, int], dict[str, Any]],
             score: Callable[[dict[str, Any]], float],
             extend: Callable[[dict[float, float]], float | None] | None = None) -> GridResult:
    """Train each rate with the first seed, pick the best by `score` (a selection-split metric of a run's
    metrics), then train the other seeds at that rate. The first seed's run at the best rate is reused.

    `extend` (e.g. `grid_extension`) may name one more rate to try after the grid, when the best one
    sits at an edge; it is scored the same way."""
    grid = {lr: run(lr, seeds[0]) for lr in learning_rates}
    scores = {lr: score(m) for lr, m in grid.items()}
    extra = extend(scores) if extend is not None else None
    if extra is not None:
        print(f"best rate {best_learning_rate(scores):g} is at the grid's edge; also trying {extra:g}")
        grid[extra] = run(extra, seeds[0])
        scores[extra] = score(grid[extra])
    best = best_learning_rate(scores)
    return GridResult(best, scores, grid, [grid[best]] + [run(best, s) for s in seeds[1:]])


def reusable_run(run_dir: Path, key: str) -> dict[str, Any] | None:
    """A finished run's metrics when `run_dir` holds the same run (resuming a grid after an interruption)."""
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("run_key") == key else None
