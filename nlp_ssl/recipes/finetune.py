"""`nlp-ssl finetune CONFIG` (or `accelerate launch scripts/finetune_classification.py CONFIG`): fine-tune a
pretrained encoder (or the same architecture from scratch) for text classification or regression.

setup (output dir, task, splits, tokenizer) -> train (one run; or a learning-rate grid on the first seed scored on
the selection split, then every seed at the best rate; each run: few-label sample -> train -> [self-training
rounds] -> score every evaluation split -> save a model directory) -> summary (mean and std over seeds).

A config whose `task.type` is `extractive_qa` runs `recipes/finetune_qa.py` (the CLI chooses, see cli.recipe_for).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from nlp_ssl.outputs import METRICS_FILE, check_output_dir, clear_for_start, read_metrics, write_json_atomic
from nlp_ssl.tasks.classification_finetune import FinetuneConfig

__all__ = ["FinetuneConfig", "main"]


def main(cfg: FinetuneConfig, data_dir: str | None = None) -> dict[str, Any]:
    """Fine-tune and return the metrics (also written to output_dir/metrics.json)."""
    from nlp_ssl.atomic import write_marker
    from nlp_ssl.finetuning import check_trainer_options, is_main_process, refuse_unresumed
    from nlp_ssl.hub import share, write_model_card
    from nlp_ssl.plots import plot_run
    from nlp_ssl.runinfo import RunClock, write_run_info
    from nlp_ssl.selection import reusable_run, run_grid
    from nlp_ssl.tasks.classification_finetune import ClassificationJob, grid_summary, headline, run_key

    # --- setup ---------------------------------------------------------------------------------------
    from nlp_ssl.finetuning import check_model_dir
    from nlp_ssl.tasks.classification import resolve_task

    resolve_task(cfg.task)  # the task's config mistakes and a model that is not there answer at once (no torch
    check_model_dir(cfg.model, cfg.tokenizer)  # import); then what the Trainer would refuse, then the output dir
    check_trainer_options(cfg.train)
    clock = RunClock()  # load average at the start, for the summary's provenance
    out = Path(cfg.output_dir)
    if check_output_dir(cfg) == "done":
        print(f"{out} already holds this run, finished (same config); nothing to do")
        return read_metrics(out)
    refuse_unresumed(out / "checkpoints", cfg.train.resume or cfg.overwrite)  # overwrite: removed below
    job = ClassificationJob(cfg, data_dir)
    task, lrs, seeds = job.task, cfg.train.learning_rate_grid, cfg.seeds
    print(job.describe())
    clear_for_start(out, cfg.overwrite)

    # --- train, validate, save: one run (output_dir is the model directory) ---------------------------
    if len(lrs) == 1 and len(seeds) == 1:
        if cfg.train.save_steps and is_main_process():  # checkpoints in output_dir: recognised as this run's
            write_run_info(out, cfg, "finetune", {"labels": job.labels})
        metrics = job.run(lrs[0], seeds[0], out, out / "checkpoints")
        print(f"saved to {out}: {task.report_split} {headline(metrics, task)}")
        if is_main_process() and cfg.hub.push:
            share(out, cfg.hub)
        return metrics

    # --- or a grid on the first seed, then every seed at the best rate --------------------------------
    if is_main_process():
        write_run_info(out, cfg, "finetune", {"labels": job.labels})
    sel, main_metric = task.selection_split, task.metrics[0]

    def run(lr: float, seed: int) -> dict[str, Any]:
        run_dir = out / f"lr{lr:g}-seed{seed}"
        metrics = reusable_run(run_dir, run_key(cfg, lr, seed)) or job.run(lr, seed, run_dir,
                                                                           out / "checkpoints" / run_dir.name)
        report = "" if task.report_split == sel else f"; {task.report_split} {headline(metrics, task)}"
        print(f"lr {lr:g} seed {seed}: {sel} {main_metric} {metrics['eval'][sel][main_metric]:.4f}{report}", flush=True)
        return metrics

    from nlp_ssl.finetuning import grid_extension

    result = run_grid(lrs, seeds, run, score=lambda m: m["eval"][sel][main_metric],
                      extend=grid_extension if cfg.train.extend_lr_grid else None)
    summary = grid_summary(cfg, task, result)
    summary["provenance"] = clock.provenance()
    if is_main_process():
        shutil.rmtree(out / "checkpoints", ignore_errors=True)  # every run is saved
        write_json_atomic(out / METRICS_FILE, summary)
        plot_run(out)
        for r in result.runs:  # their cards now carry the mean and std over seeds
            run_dir = out / f"lr{r['learning_rate']:g}-seed{r['seed']}"
            write_model_card(run_dir)
            write_marker(run_dir)  # the card changed size: the run's completeness marker must list the new one
        if cfg.hub.push:
            share(out / f"lr{result.best_learning_rate:g}-seed{seeds[0]}", cfg.hub)
    return summary
