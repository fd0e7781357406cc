"""`nlp-ssl pretrain CONFIG` (or `accelerate launch scripts/pretrain.py CONFIG`): pretrain an encoder on
prepared blocks with a pretext task, through the Hugging Face `Trainer`.

setup (data, tokenizer, objective from `objectives.registry`: model + collator + fixed validation set, output
dir) -> train (Trainer, resumable from complete checkpoints, optionally under a wall-clock budget) -> validate
(the objective's metrics on the fixed validation blocks) -> save (a standard HF model directory with the
tokenizer, `metrics.json`, resolved config, run info with the objective's `artifact`, plots and model card;
uploaded when hub.push is set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nlp_ssl.objectives.registry import ObjectiveConfig
from nlp_ssl.outputs import METRICS_FILE, read_metrics
from nlp_ssl.pretraining import PretrainConfig

__all__ = ["ObjectiveConfig", "PretrainConfig", "main"]


def main(cfg: PretrainConfig, data_dir: str | None = None) -> dict[str, Any]:
    """Pretrain and return the final metrics (also written to output_dir/metrics.json)."""
    from accelerate import PartialState

    from nlp_ssl.checkpoints import mark_finished, save_final
    from nlp_ssl.hub.cards import write_model_card
    from nlp_ssl.hub.push import push_if_asked
    from nlp_ssl.modeling import count_parameters
    from nlp_ssl.outputs import check_resumable_output_dir, clear_for_start
    from nlp_ssl.plots import plot_run
    from nlp_ssl.pretraining import (build_trainer, final_metrics, global_batch_size, load_blocks, setup_objective,
                                     tokenizer_path, training_arguments)
    from nlp_ssl.runinfo import RunClock, write_run_info
    from nlp_ssl.tokenization import check_same_tokenizer, load_tokenizer
    from nlp_ssl.optimization import apply_impl, check_trainer_options

    # --- setup ---------------------------------------------------------------------------------------
    check_trainer_options(cfg.train, cfg.impl)  # what the Trainer would refuse, before any data is read
    clock = RunClock()  # load average at the start, for the provenance metrics.json records
    apply_impl(cfg.impl)
    blocks, report = load_blocks(cfg.data)
    tok_path = tokenizer_path(cfg, report)
    tokenizer = load_tokenizer(tok_path)
    check_same_tokenizer(tokenizer, report.get("tokenizer_fingerprint"), tok_path, cfg.data)
    train_blocks = blocks["train"]
    block_size = len(train_blocks[0]["input_ids"])
    objective = setup_objective(cfg, tokenizer, blocks)
    args = training_arguments(cfg, block_size)
    global_batch = global_batch_size(cfg, args, train_blocks)
    out = Path(cfg.output_dir)
    action, resume_from = check_resumable_output_dir(cfg)
    if action == "done":
        print(f"{out} already holds this run, finished (same config); nothing to do")
        return read_metrics(out)
    state = PartialState()
    clear_for_start(out, cfg.overwrite)  # every rank has checked the directory before rank 0 changes it
    params = count_parameters(objective.model)
    if state.is_main_process:
        write_run_info(out, cfg, "pretrain", {"world_size": args.world_size, "parameters": params,
                                              "artifact": objective.artifact.to_dict()})  # read by the card
    state.wait_for_everyone()
    trainer = build_trainer(cfg, args, objective, tokenizer, train_blocks)

    # --- train ---------------------------------------------------------------------------------------
    if state.is_main_process:
        print(f"pretraining {cfg.objective.task}: {objective.describe or cfg.model.arch}, {cfg.model.preset} "
              f"({params / 1e6:.2f}M parameters) on {len(train_blocks):,} blocks of {block_size}, global batch "
              f"{global_batch}, {args.world_size} process(es)" + (f", resuming from {resume_from}" if resume_from else ""))
    train_seconds = trainer.fit(resume_from)

    # --- validate and save ---------------------------------------------------------------------------
    metrics = final_metrics(cfg, trainer, train_seconds, global_batch * block_size, objective.eval_set is not None)
    metrics["provenance"] = clock.provenance(run_length=cfg.train.run_length())
    if save_final(trainer, tokenizer, out, metrics, METRICS_FILE):  # every rank enters (FSDP gathers the weights)
        plot_run(out)
        write_model_card(out, repo_id=cfg.hub.repo_id)
        mark_finished(out)  # last: the run counts as finished only now
        summary = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float) and k.startswith("eval_"))
        print(f"saved to {out}: {summary}")
    state.wait_for_everyone()
    if state.is_main_process:  # after the barrier: a failed upload neither unfinishes the run nor stalls a rank
        push_if_asked(out, cfg.hub)
    return metrics
