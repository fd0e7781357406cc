"""PNG plots of runs, drawn headless with matplotlib (the Agg backend: no display needed).

- `plot_run(run_dir)`: the curves of one run from its `log_history.json` (the Trainer's log), written to
  `run_dir/plots/`: pretraining: training and validation loss against optimizer steps and tokens seen, learning
  rate, tokens/s; fine-tuning: training loss and learning rate against steps, with the final dev metrics marked.
  A multi-seed fine-tuning directory gets the learning-rate grid and the per-seed scores.
- `label_efficiency(...)`: score against the number of labels (log x-axis), one line per initialisation, with
  the standard deviation over seeds as error bars (used by `nlp-ssl report`).

matplotlib is imported inside the functions: importing it costs about a second and only runs that draw pay it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from nlp_ssl.layout import (LEARNING_CURVE_FILE, LOG_HISTORY_FILE, METRICS_FILE, PLOTS_DIR, RUN_INFO_FILE, read_json,
                            run_kind)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # headless: no display on servers or CI
    import matplotlib.pyplot as plt

    return plt


def _series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(h["step"], h[key]) for h in history if key in h and "step" in h and isinstance(h[key], (int, float))
           and math.isfinite(h[key])]
    return [p[0] for p in pts], [p[1] for p in pts]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_pretraining(history: list[dict], tokens_per_step: float | None, out_dir: Path, title: str = "") -> list[Path]:
    """loss.png (against steps and tokens), learning_rate.png and throughput.png from a pretraining log."""
    plt = _pyplot()
    written = []
    s_train, train = _series(history, "loss")
    s_eval, val = _series(history, "eval_loss")
    fig, axes = plt.subplots(1, 2 if tokens_per_step else 1, figsize=(10 if tokens_per_step else 5.5, 3.8), squeeze=False)
    scales = [("optimizer step", 1.0)] + ([("tokens seen", tokens_per_step)] if tokens_per_step else [])
    for ax, (label, scale) in zip(axes[0], scales):
        ax.plot([s * scale for s in s_train], train, label="training loss", color="tab:blue")
        if val:
            ax.plot([s * scale for s in s_eval], val, "o-", label="validation loss", color="tab:orange")
        ax.set_xlabel(label)
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{title} loss".strip())
    written.append(_save(fig, out_dir / "loss.png"))
    for key, name, ylabel in (("learning_rate", "learning_rate.png", "learning rate"),
                              ("tokens_per_second", "throughput.png", "tokens / s")):
        steps, values = _series(history, key)
        if not values:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        ax.plot(steps, values, color="tab:green")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.set_title(f"{title} {ylabel}".strip())
        written.append(_save(fig, out_dir / name))
    return written


def plot_finetuning(history: list[dict], final: dict[str, dict[str, float]], steps: int | None, out_dir: Path,
                    title: str = "", curve: dict | None = None) -> list[Path]:
    """training.png: training loss and learning rate against steps; the dev metric against steps when the run
    scored it during training (`curve`: learning_curve.json, from train.eval_steps), and the final scores marked
    (at the step whose weights were kept)."""
    plt = _pyplot()
    s_train, train = _series(history, "loss")
    if not train:  # logging_steps above the run's length: only the mean over the run was logged
        s_train, train = _series(history, "train_loss")
    s_lr, lr = _series(history, "learning_rate")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot(s_train, train, "o-" if len(train) < 30 else "-", color="tab:blue", label="training loss")
    axes[0].set_xlabel("optimizer step")
    axes[0].set_ylabel("training loss")
    axes[0].grid(alpha=0.3)
    points = (curve or {}).get("points") or []
    if (final and steps) or points:
        ax2 = axes[0].twinx()
        if points:  # scored during training (train.eval_steps)
            name = f"{curve['split']} {curve['metric']}"
            s_eval, values = _series(points, curve["metric"])
            ax2.plot(s_eval, values, "o--", color="C1", label=f"{name} during training")
            if curve.get("best_step") is not None:
                ax2.axvline(curve["best_step"], color="grey", ls=":", lw=1, label=f"best step {curve['best_step']} (kept)")
        at = (curve or {}).get("best_step") or steps
        for i, (split, metrics) in enumerate((final or {}).items()):
            for j, (name, value) in enumerate(metrics.items()):
                ax2.plot([at], [value], "s", color=f"C{2 + i * 3 + j}", label=f"{split} {name} {value:.3g} (final)")
        ax2.set_ylabel("evaluation")
        h1, l1 = axes[0].get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax2.legend(h1 + h2, l1 + l2, loc="best", fontsize=8)
    else:
        axes[0].legend(loc="best", fontsize=8)
    axes[1].plot(s_lr, lr, color="tab:green")
    if not lr:
        axes[1].text(0.5, 0.5, "not logged\n(train.logging_steps is above the run's steps)", ha="center",
                     va="center", transform=axes[1].transAxes, color="grey")
        axes[1].set_xticks([])
        axes[1].set_yticks([])
    axes[1].set_xlabel("optimizer step")
    axes[1].set_ylabel("learning rate")
    axes[1].grid(alpha=0.3)
    fig.suptitle(title)
    return [_save(fig, out_dir / "training.png")]


def plot_grid(summary: dict, out_dir: Path, title: str = "") -> list[Path]:
    """grid.png: the selection metric per learning rate (seed 1), and the report-split scores per seed."""
    plt = _pyplot()
    sel = summary["selection"]
    grid = {float(k): v for k, v in sel["grid"].items()}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    xs = sorted(grid)
    axes[0].plot(xs, [grid[x] for x in xs], "o-")
    axes[0].axvline(sel["best_learning_rate"], color="grey", ls="--", lw=1)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("learning rate")
    axes[0].set_ylabel(f"{sel['split']} {sel['metric']} (seed {summary['seeds'][0]})")
    axes[0].grid(alpha=0.3)
    split, metric = summary["report_split"], sel["metric"]
    seeds = [r["seed"] for r in summary["runs"]]
    vals = [r["eval"][split][metric] for r in summary["runs"]]
    axes[1].bar([str(s) for s in seeds], vals, color="tab:blue")
    s = summary["summary"][split][metric]
    axes[1].axhline(s["mean"], color="tab:orange", label=f"mean {s['mean']:.3g} ± {s['std']:.2g}")
    axes[1].set_xlabel("seed")
    axes[1].set_ylabel(f"{split} {metric}")
    axes[1].legend()
    fig.suptitle(title)
    return [_save(fig, out_dir / "grid.png")]


def plot_run(run_dir: str | Path) -> list[Path]:
    """Draw the plots of a finished run into `run_dir/plots/`; returns the files written (none if no log)."""
    run_dir = Path(run_dir)  # finished, or still being written (no metrics.json yet: plotted from its log alone)
    metrics = read_json(run_dir / METRICS_FILE, {})
    history = read_json(run_dir / LOG_HISTORY_FILE, None)
    kind = run_kind(metrics, read_json(run_dir / RUN_INFO_FILE, {}))
    out = run_dir / PLOTS_DIR
    title = re.sub(r"^\.(.+)\.tmp-\d+$", r"\1", run_dir.name)  # a run still being written (runinfo.atomic_dir)
    if kind == "grid":
        return plot_grid(metrics, out, title)
    if not isinstance(history, list) or not history:
        return []
    if kind == "pretrain":
        steps = metrics.get("steps") or 0
        tps = metrics["tokens_seen"] / steps if steps and metrics.get("tokens_seen") else None
        return plot_pretraining(history, tps, out, title)
    final = {split: {k: v for k, v in m.items() if k in ("accuracy", "f1", "matthews_correlation", "pearson",
                                                          "spearmanr", "macro_f1", "exact_match", "exact")}
             for split, m in (metrics.get("eval") or {}).items()}
    return plot_finetuning(history, final, metrics.get("steps"), out, title,
                           read_json(run_dir / LEARNING_CURVE_FILE, None))


def label_efficiency(points: dict[str, list[tuple[int, float, float]]], path: Path, ylabel: str,
                     title: str = "") -> Path:
    """Score against number of labels (log x-axis), one line per initialisation.

    Args:
        points: {initialisation: [(labels, mean, std), ...]}.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, pts) in enumerate(sorted(points.items())):
        pts = sorted(pts)
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], fmt="o-", capsize=4,
                    color=f"C{i}", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(title)
    return _save(fig, path)
