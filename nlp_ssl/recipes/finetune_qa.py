"""`nlp-ssl finetune CONFIG` with `task.type: extractive_qa` (or `accelerate launch scripts/finetune_qa.py
CONFIG`): fine-tune an encoder for extractive question answering and score it with the official SQuAD metrics.

setup (task, tokenizer, examples with their checks, windows, output dir) -> train (HF Trainer on windows, dynamic
padding; with train.eval_steps a learning curve on the selection split keeps the best weights) -> validate (predict every evaluation window, n-best post-processing; v2: the null threshold tuned on the
selection split) -> save (a model directory whose config.json records the QA settings used by `nlp-ssl answer`,
predictions.json in the official format for the selection split, predictions-<split>.json, metrics.json, logs,
plots, model card; uploaded when hub.push is set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nlp_ssl.outputs import check_output_dir, clear_for_start, read_metrics
from nlp_ssl.tasks.qa_finetune import QAFinetuneConfig

__all__ = ["QAFinetuneConfig", "main"]


def main(cfg: QAFinetuneConfig, data_dir: str | None = None) -> dict[str, Any]:
    """Fine-tune for extractive QA and return the metrics (also written to output_dir/metrics.json)."""
    from nlp_ssl.atomic import scratch_dir
    from nlp_ssl.finetuning import (autocast_dtype, check_trainer_options, checkpoint_to_resume, is_main_process,
                                    main_process_output, refuse_unresumed)
    from nlp_ssl.hub import share
    from nlp_ssl.runinfo import RunClock, write_run_info
    from nlp_ssl.tasks.qa_finetune import (headline, load_qa_data, run_metrics, save_qa_run, score_splits, setup_qa,
                                           train_qa)

    # --- setup ---------------------------------------------------------------------------------------
    from nlp_ssl.finetuning import check_model_dir
    from nlp_ssl.tasks.qa import resolve_qa_task

    resolve_qa_task(cfg.task)  # the task's config mistakes and a model that is not there answer at once (no torch
    check_model_dir(cfg.model, cfg.tokenizer)  # import); then what the Trainer would refuse, then the output dir
    check_trainer_options(cfg.train)
    clock = RunClock()  # the figure's provenance (commit, versions, machine, load at start and end)
    out = Path(cfg.output_dir)
    if check_output_dir(cfg) == "done":
        print(f"{out} already holds this run, finished (same config); nothing to do")
        return read_metrics(out)
    refuse_unresumed(out / "checkpoints", cfg.train.resume or cfg.overwrite)  # overwrite: removed below
    task, tokenizer = setup_qa(cfg)
    data = load_qa_data(cfg, task, tokenizer, data_dir)
    print(data.describe(task.version))
    clear_for_start(out, cfg.overwrite)
    checkpoints, resume_from = None, None
    if cfg.train.save_steps:  # mid-run checkpoints in output_dir/checkpoints, recognised as this run's
        checkpoints = out / "checkpoints"
        resume_from = checkpoint_to_resume(checkpoints, cfg.train.resume)
        if is_main_process():
            write_run_info(out, cfg, "finetune")
    dtype = autocast_dtype(cfg.train.bf16, cfg.train.fp16)  # evaluation as training: on its device, autocast

    with main_process_output(out) as tmp, scratch_dir(out) as work:
        # --- train -----------------------------------------------------------------------------------
        trainer, stats, curve = train_qa(cfg, task, data, tokenizer, str(work),
                                         str(checkpoints) if checkpoints else None, resume_from, dtype)
        # --- validate --------------------------------------------------------------------------------
        scored, threshold = score_splits(trainer.model, tokenizer, task, data.evals,
                                         cfg.train.per_device_eval_batch_size, dtype)
        metrics = run_metrics(cfg, task, data, stats, scored, curve)
        metrics["provenance"] = clock.provenance()  # as classification's metrics.json (SQuAD figures too)
        # --- save ------------------------------------------------------------------------------------
        save_qa_run(tmp, trainer.args.output_dir, cfg, task, trainer, tokenizer, metrics, scored, threshold, curve)
    if is_main_process():
        share(out, cfg.hub)  # model card, and the upload when hub.push is set
    print(f"saved to {out}: {headline(metrics, task)}")
    return metrics
