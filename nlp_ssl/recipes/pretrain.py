"""`nlp-ssl pretrain CONFIG` (or `accelerate launch scripts/pretrain.py CONFIG`): pretrain an encoder on
prepared blocks with a pretext task, through the Hugging Face `Trainer`.

setup (config checks, data, tokenizer, model, output dir) -> train (Trainer, resumable) -> validate (MLM
accuracy and perplexity on fixed masked validation blocks) -> save (a standard HF model directory with the
tokenizer, `metrics.json`, resolved config and run info).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlp_ssl.config import read_yaml
from nlp_ssl.errors import ConfigError, DataError, ModelError, OutputError
from nlp_ssl.hub import HubConfig
from nlp_ssl.modeling import ModelConfig
from nlp_ssl.objectives.registry import ObjectiveConfig
from nlp_ssl.runinfo import write_run_info
from nlp_ssl.training import ImplConfig, TrainConfig

METRICS_FILE = "metrics.json"


@dataclass
class PretrainConfig:
    """Config of `nlp-ssl pretrain`.

    Attributes:
        output_dir: the trained model (loads with `AutoModelForMaskedLM.from_pretrained`), checkpoints/ and tensorboard/.
        data: a directory written by `nlp-ssl prepare`.
        tokenizer: the tokenizer directory; null takes the one recorded by `prepare`.
        model, objective, train, impl, hub: see their classes.
    """

    output_dir: str
    data: str
    tokenizer: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    impl: ImplConfig = field(default_factory=ImplConfig)
    hub: HubConfig = field(default_factory=HubConfig)

    def validate(self) -> list[str]:
        problems = []
        if self.objective.task == "clm" and self.model.arch == "modernbert":
            problems.append("objective.task: clm needs a model with a causal-LM head; use model.arch bert or roberta")
        if self.objective.task == "clm" and self.model.sparse_prediction:
            problems.append("model.sparse_prediction: only for objective.task mlm; set it to false for clm")
        return problems


def _comparable(cfg_dict: dict) -> dict:
    """The config without the keys that may differ between a run and its resumption (a moved run may resume)."""
    out = json.loads(json.dumps(cfg_dict))
    out.pop("output_dir", None)
    out.pop("hub", None)  # where the model is shared does not change it
    for key in ("resume", "overwrite"):
        out.get("train", {}).pop(key, None)
    return out


def check_output_dir(cfg: PretrainConfig) -> tuple[str, str | None]:
    """What to do with the output dir: ("start", None), ("resume", checkpoint) or ("done", None).

    A finished run of the same config is "done" (nothing to redo); a directory holding another run is refused
    unless the config asks to resume it (same config) or to overwrite it.
    """
    from nlp_ssl.atomic import check_output_target, is_complete, refuse_input_overlap
    from nlp_ssl.checkpoints import last_complete_checkpoint
    from nlp_ssl.config import to_dict

    out = Path(cfg.output_dir)
    refuse_input_overlap(out, {"data": cfg.data, "tokenizer": cfg.tokenizer,
                               "model.init_from": getattr(cfg.model, "init_from", None)})
    check_output_target(out, "pretrain", cfg.train.overwrite)
    if not out.exists() or not any(out.iterdir()):
        if cfg.train.resume:
            raise OutputError(f"train.resume: {out} holds no run to resume; set train.resume=false to start one")
        return "start", None
    if cfg.train.overwrite:
        return "start", None
    saved = out / "config.yaml"
    same = saved.exists() and _comparable(read_yaml(saved)) == _comparable(to_dict(cfg))
    if same and is_complete(out):
        return "done", None
    if not cfg.train.resume:
        raise OutputError(f"{out} already holds a run; set train.resume=true to continue it, train.overwrite=true "
                          "to start over, or choose another output_dir")
    if not saved.exists():
        raise OutputError(f"train.resume: {out} holds files but no config.yaml of an nlp-ssl run; choose another output_dir")
    if not same:
        raise OutputError(f"train.resume: the config differs from the one {out} was trained with ({saved}); "
                          "resume with the same config, or set train.overwrite=true to start over")
    ckpt_dir = out / "checkpoints"
    last = last_complete_checkpoint(ckpt_dir)
    if last is None:  # stopped before its first complete checkpoint: nothing to keep, start again
        print(f"{out} holds this run but no complete checkpoint yet; starting it from step 0")
        return "start", None
    return "resume", last


def load_blocks(path: str):
    """The prepared DatasetDict and its report, with a clear error when `path` is not one."""
    import datasets

    p = Path(path)
    if not (p / "dataset_dict.json").exists():
        raise DataError(f"{p} holds no prepared corpus; run `nlp-ssl prepare CONFIG` first (or fix `data:`)")
    report_path = p / "prepare_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return datasets.load_from_disk(str(p)), report


def masked_eval_set(blocks, collator, n: int, seed: int):
    """Moved to `nlp_ssl.objectives.mlm.masked_eval_set` (kept here for existing callers)."""
    from nlp_ssl.objectives.mlm import masked_eval_set as impl

    return impl(blocks, collator, n, seed)


def check_ids_fit(blocks, vocab_size: int, where: str) -> None:
    """Token ids in the data must exist in the model's vocabulary (catches a data/tokenizer mix-up)."""
    import numpy as np

    sample = np.asarray(blocks.select(range(min(1000, len(blocks)))).with_format("numpy")["input_ids"])
    if sample.size and sample.max() >= vocab_size:
        raise ModelError(f"data: {where} holds token id {int(sample.max())} but the model's vocabulary has "
                         f"{vocab_size} entries; the corpus was prepared with another tokenizer")


def main(cfg: PretrainConfig, data_dir: str | None = None) -> dict[str, Any]:
    """Pretrain and return the final metrics (also written to output_dir/metrics.json)."""
    import torch
    from transformers import TrainingArguments

    from nlp_ssl.checkpoints import mark_finished, save_final
    from nlp_ssl.hub import share
    from nlp_ssl.modeling import count_parameters
    from nlp_ssl.objectives.registry import build_objective
    from nlp_ssl.plots import plot_run
    from nlp_ssl.tokenization import check_same_tokenizer, load_tokenizer
    from nlp_ssl.training import (
        PackedBlocks, trainer_callbacks, apply_impl, make_trainer_class, set_tensorboard_dir, summarize_log_history,
    )

    # --- setup ---------------------------------------------------------------------------------------
    apply_impl(cfg.impl)
    dd, report = load_blocks(cfg.data)
    tok_path = cfg.tokenizer or report.get("tokenizer")
    if not tok_path:
        raise ConfigError(["tokenizer: not given and the prepared data does not record one; set tokenizer: DIR"])
    tokenizer = load_tokenizer(tok_path)
    check_same_tokenizer(tokenizer, report.get("tokenizer_fingerprint"), tok_path, cfg.data)
    train_blocks = dd["train"]
    block_size = len(train_blocks[0]["input_ids"])
    torch.manual_seed(cfg.train.seed)
    objective = build_objective(cfg.objective, cfg.model, tokenizer, dd, seed=cfg.train.seed,
                                eval_blocks=cfg.train.eval_blocks)
    model, collator, eval_set = objective.model, objective.collator, objective.eval_set
    check_ids_fit(train_blocks, objective.config.vocab_size, cfg.data)

    out = Path(cfg.output_dir)
    budget_s = cfg.train.max_time_minutes * 60 if cfg.train.max_time_minutes else None
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=cfg.train.per_device_batch_size,
        per_device_eval_batch_size=cfg.train.per_device_batch_size * 2,
        gradient_accumulation_steps=cfg.train.gradient_accumulation_steps,
        learning_rate=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay,
        adam_beta1=cfg.train.adam_beta1, adam_beta2=cfg.train.adam_beta2, adam_epsilon=cfg.train.adam_epsilon,
        max_grad_norm=cfg.train.max_grad_norm,
        lr_scheduler_type={"constant": "constant_with_warmup"}.get(cfg.train.lr_scheduler, cfg.train.lr_scheduler),
        warmup_steps=cfg.train.warmup_ratio,  # a float below 1 is a ratio of the run in transformers 5
        max_steps=cfg.train.trainer_length()[0], num_train_epochs=cfg.train.trainer_length()[1],
        eval_strategy="steps" if cfg.train.eval_steps else "no", eval_steps=cfg.train.eval_steps or None,
        save_strategy="steps" if cfg.train.save_steps else "no", save_steps=cfg.train.save_steps or None,
        save_total_limit=cfg.train.save_total_limit,
        logging_steps=cfg.train.logging_steps, logging_first_step=True,
        report_to=[r for r in cfg.train.report_to if r != "none"],
        seed=cfg.train.seed, data_seed=cfg.train.seed,
        bf16=cfg.train.bf16, torch_compile=cfg.impl.torch_compile,
        dataloader_num_workers=cfg.impl.dataloader_num_workers,
        remove_unused_columns=False,  # the collator needs `idx` and `word_start`
        label_names=["labels"],
        use_cpu=not torch.cuda.is_available(),
        ddp_find_unused_parameters=False,
    )
    world = args.world_size
    global_batch = cfg.train.per_device_batch_size * world * cfg.train.gradient_accumulation_steps
    if len(train_blocks) < global_batch:
        raise DataError(f"{cfg.data}: {len(train_blocks)} training blocks are fewer than one global batch "
                        f"({cfg.train.per_device_batch_size} x {world} devices x {cfg.train.gradient_accumulation_steps} "
                        "accumulation); use more text or a smaller train.per_device_batch_size")
    action, resume_from = check_output_dir(cfg)
    if action == "done":
        print(f"{out} already holds this run, finished (same config); nothing to do")
        return json.loads((out / METRICS_FILE).read_text())
    from accelerate import PartialState

    state = PartialState()
    state.wait_for_everyone()  # every rank has checked the directory before rank 0 writes to it
    if state.is_main_process:
        if cfg.train.overwrite and out.exists():
            shutil.rmtree(out)
        write_run_info(out, cfg, "pretrain", {"world_size": world, "parameters": count_parameters(model)})
    state.wait_for_everyone()

    if eval_set is None and cfg.train.eval_steps:
        raise DataError(f"{cfg.data} has no validation blocks; prepare with validation_fraction > 0 or set train.eval_steps=0")

    TimeBudget, Throughput, CollatorEpoch = trainer_callbacks()
    callbacks = [Throughput(global_batch * block_size), CollatorEpoch(collator)]
    Trainer = make_trainer_class()
    budget = None
    if budget_s:
        budget = TimeBudget(budget_s)  # restored from resume_from's record by the trainer
        callbacks.append(budget)
    Trainer.time_budget, Trainer.warmup_ratio, Trainer.schedule = budget, cfg.train.warmup_ratio, cfg.train.lr_scheduler
    trainer = Trainer(model=model, args=args, data_collator=collator, train_dataset=PackedBlocks(train_blocks, objective.columns),
                      eval_dataset=eval_set, processing_class=tokenizer, callbacks=callbacks, **objective.metric_kwargs)
    set_tensorboard_dir(trainer, str(out / "tensorboard"))

    # --- train ---------------------------------------------------------------------------------------
    if state.is_main_process:
        print(f"pretraining {cfg.objective.task}: {objective.describe or cfg.model.arch}, {cfg.model.preset} "
              f"({count_parameters(model) / 1e6:.2f}M parameters) on "
              f"{len(train_blocks):,} blocks of {block_size}, global batch {global_batch}, {world} process(es)"
              + (f", resuming from {resume_from}" if resume_from else ""))
    train_seconds = trainer.fit(resume_from)

    # --- validate and save ---------------------------------------------------------------------------
    metrics: dict[str, Any] = {"train_runtime_s": train_seconds, "steps": trainer.state.global_step,
                               "train_loss_mean": trainer.train_loss_mean(), "world_size": world,
                               "tokens_seen": trainer.state.global_step * global_batch * block_size}
    if eval_set is not None:
        ev = trainer.evaluate()
        metrics.update(ev)
        if cfg.objective.task in ("mlm", "clm") and not cfg.objective.sentence_order:  # eval_loss is the LM's
            metrics["eval_perplexity"] = math.exp(min(ev["eval_loss"], 50))
    metrics.update({k: v for k, v in summarize_log_history(trainer.state.log_history).items() if k not in metrics})
    metrics.pop("eval_model_preparation_time", None)  # only there when the model was loaded from a checkpoint
    if trainer.is_world_process_zero():
        save_final(trainer, tokenizer, out, metrics, METRICS_FILE)
        plot_run(out)
        share(out, cfg.hub)  # model card, and the upload when hub.push is set
        mark_finished(out)  # last: the run counts as finished only now
        summary = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float) and k.startswith("eval_"))
        print(f"saved to {out}: {summary}")
    state.wait_for_everyone()
    return metrics
