"""`nlp-ssl finetune CONFIG` with `task.type: extractive_qa` (or `accelerate launch scripts/finetune_qa.py
CONFIG`): fine-tune an encoder for extractive question answering and score it with the official SQuAD metrics.

setup (task, examples with their checks, windows, output dir) -> train (HF Trainer on windows, dynamic padding)
-> predict every evaluation window (length-sorted batches) -> n-best post-processing over windows -> v2: tune
the null threshold on the selection split -> save a model directory (its config.json records the QA settings
used by `nlp-ssl answer`), predictions.json in the official format (the selection split; other splits:
predictions-<split>.json), metrics.json.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp_ssl.errors import ConfigError
from nlp_ssl.finetuning import FinetuneTrainConfig, Init
from nlp_ssl.hub import HubConfig
from nlp_ssl.runinfo import write_run_info
from nlp_ssl.tasks.qa import QATaskConfig

METRICS_FILE = "metrics.json"
INPUTS = ("input_ids", "token_type_ids", "attention_mask")


@dataclass
class QAFinetuneConfig:
    """Config of `nlp-ssl finetune` for extractive question answering.

    Attributes:
        output_dir: the model directory written (with predictions and metrics).
        model: the pretrained encoder: a directory, or a Hub id such as `bert-base-uncased`.
        tokenizer: the tokenizer directory, when the model directory has none (it must be a fast tokenizer).
        init: `pretrained` (the encoder's weights) or `scratch` (same architecture, random weights).
        task: see QATaskConfig.
        max_train_samples: train on a seeded random sample of this many questions (null: all).
        max_eval_samples: score only the first N questions of each evaluation split (quick runs; null: all).
        seed: seed of the sample, the head initialisation and the data order.
        train: see FinetuneTrainConfig (per_device_batch_size counts windows).
        save_predictions: write predictions.json (official format: id -> answer) and, for v2, na_scores.json
            (null score - best span score per id) for the selection split; predictions-<split>.json for the others.
        overwrite: replace an output_dir that holds another run.
        hub: push the model when the run finishes; see HubConfig.
    """

    output_dir: str
    model: str
    tokenizer: str | None = None
    init: Init = "pretrained"
    task: QATaskConfig = field(default_factory=QATaskConfig)
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    seed: int = 1
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    save_predictions: bool = True
    overwrite: bool = False
    hub: HubConfig = field(default_factory=HubConfig)

    def validate(self) -> list[str]:
        problems = []
        if len(self.train.learning_rates) != 1:
            problems.append("train.learning_rates: extractive QA runs one learning rate; give a list of one")
        for name in ("max_train_samples", "max_eval_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"{name}: must be positive (or null for all)")
        return problems


def _features_dataset(feats: dict[str, list]):
    from datasets import Dataset

    keep = [k for k in (*INPUTS, "start_positions", "end_positions", "length") if k in feats]
    return Dataset.from_dict({k: feats[k] for k in keep})


def qa_settings(task: QATaskConfig, threshold: float | None) -> dict[str, Any]:
    """What `nlp-ssl answer` needs to reproduce evaluation's windowing and post-processing."""
    return {"max_length": task.max_length, "doc_stride": task.doc_stride, "max_query_length": task.max_query_length,
            "max_answer_length": task.max_answer_length, "n_best": task.n_best, "version": task.version,
            "null_threshold": 0.0 if threshold is None else float(threshold)}


def score_split(model, tokenizer, task: QATaskConfig, rows: list[dict], batch_size: int, threshold: float | None):
    """Predict, post-process and score one split -> (metrics, official predictions, na scores, threshold used)."""
    from nlp_ssl.finetuning import PadCollator, predict
    from nlp_ssl.tasks.qa import eval_features, final_answers, postprocess, score

    feats = eval_features(rows, tokenizer, task)
    out, seconds = predict(model, _features_dataset(feats), PadCollator(tokenizer, keep=INPUTS), batch_size,
                           ("start_logits", "end_logits"))
    answers, na_diff, _ = postprocess(rows, feats, out["start_logits"], out["end_logits"], task.n_best,
                                      task.max_answer_length)
    metrics, used = score(rows, answers, na_diff, task.version, threshold)
    metrics["features"] = len(feats["input_ids"])
    metrics["eval_features_per_second"] = len(feats["input_ids"]) / seconds if seconds else float("nan")
    if used is not None:
        metrics["null_threshold"] = used
    return metrics, final_answers(answers, na_diff, task.version, used or 0.0), na_diff, used


def main(cfg: QAFinetuneConfig, data_dir: str | None = None) -> dict[str, Any]:
    """Fine-tune for extractive QA and return the metrics (also written to output_dir/metrics.json)."""
    from transformers import AutoConfig, AutoModelForQuestionAnswering

    from nlp_ssl.finetuning import PadCollator, build_task_model, check_fits, check_model_dir, train, training_arguments
    from nlp_ssl.hub import local_path
    from nlp_ssl.recipes.finetune import check_output_dir
    from nlp_ssl.tasks.qa import check_fast_tokenizer, load_qa_examples, resolve_qa_task, train_features
    from nlp_ssl.tokenization import load_tokenizer

    out = Path(cfg.output_dir)
    if check_output_dir(cfg) == "done":
        print(f"{out} already holds this run, finished (same config); nothing to do")
        return json.loads((out / METRICS_FILE).read_text())
    task = resolve_qa_task(cfg.task)
    check_model_dir(cfg.model, cfg.tokenizer)
    tokenizer = load_tokenizer(cfg.tokenizer or cfg.model)
    check_fast_tokenizer(tokenizer)
    check_fits(tokenizer, AutoConfig.from_pretrained(local_path(cfg.model)), task.max_length)

    train_rows, train_report = load_qa_examples(task.train, data_dir, task.version, task.bad_answers, training=True)
    if cfg.max_train_samples and cfg.max_train_samples < len(train_rows):
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(train_rows), cfg.max_train_samples, replace=False))
        train_rows = [train_rows[i] for i in pick]
    evals = {}
    for name, src in task.eval.items():
        rows, _ = load_qa_examples(src, data_dir, task.version, task.bad_answers, training=False)
        evals[name] = rows[: cfg.max_eval_samples] if cfg.max_eval_samples else rows
    train_set = _features_dataset(train_features(train_rows, tokenizer, task))
    problems = train_report.skipped_bad_answer + train_report.fixed_answer + train_report.skipped_empty_context
    print(f"extractive QA ({task.version}): {len(train_rows):,} training questions -> {len(train_set):,} windows; "
          + ", ".join(f"{k} {len(v):,} questions" for k, v in evals.items())
          + (f"; training data: {train_report.skipped_bad_answer} answers not at answer_start skipped, "
             f"{train_report.fixed_answer} fixed, {train_report.skipped_empty_context} empty contexts skipped "
             f"(e.g. {train_report.first_problems[:2]})" if problems else ""))
    from nlp_ssl.atomic import scratch_dir
    from nlp_ssl.finetuning import is_main_process, keep_training_logs, main_process_output, wait_for_everyone
    from nlp_ssl.hub import share
    from nlp_ssl.plots import plot_run

    if cfg.overwrite and out.exists() and is_main_process():
        shutil.rmtree(out)
    wait_for_everyone()

    lr = cfg.train.learning_rates[0]
    model = build_task_model(AutoModelForQuestionAnswering, cfg.model, cfg.init, cfg.seed, cfg.train.dropout)
    with main_process_output(out) as tmp, scratch_dir(out) as work:
        args = training_arguments(work, cfg.train, lr, cfg.seed, label_names=["start_positions", "end_positions"])
        collator = PadCollator(tokenizer, keep=(*INPUTS, "start_positions", "end_positions"))
        curve = None
        if cfg.train.eval_steps:  # learning curve on the selection split, best weights kept, optional early stop
            from nlp_ssl.finetuning import selection_early_stopping

            curve = selection_early_stopping(
                lambda m: score_split(m, tokenizer, task, evals[task.selection_split], cfg.train.eval_batch_size,
                                      task.null_threshold)[0], "f1", cfg.train.eval_steps, cfg.train.early_stopping_patience)
        trainer, stats = train(model, args, train_set, collator, tokenizer, cfg.train.layer_lr_decay,
                               (curve,) if curve else ())
        model = trainer.model
        metrics: dict[str, Any] = {"learning_rate": lr, "seed": cfg.seed, "init": cfg.init,
                                   "train_questions": len(train_rows), "train_features": len(train_set),
                                   "train_features_per_second": stats.pop("train_examples_per_second"), **stats,
                                   "train_data": asdict(train_report), "eval": {}}
        if curve is not None:
            metrics["best_step"] = curve.best_step
            (tmp / "learning_curve.json").write_text(json.dumps(
                {"split": task.selection_split, "metric": "f1", "best_step": curve.best_step, "best": curve.best,
                 "stopped_early": stats["steps"] < trainer.state.max_steps,
                 "points": curve.curve}, indent=1) + "\n")
        # the selection split first: for v2 it tunes the null threshold that the other splits then use
        order = [task.selection_split] + [s for s in evals if s != task.selection_split]
        threshold = task.null_threshold
        for split in order:
            m, preds, na_diff, used = score_split(model, tokenizer, task, evals[split], cfg.train.eval_batch_size, threshold)
            threshold = used if threshold is None else threshold
            metrics["eval"][split] = m
            if cfg.save_predictions:
                suffix = "" if split == task.selection_split else f"-{split}"
                (tmp / f"predictions{suffix}.json").write_text(json.dumps(preds, indent=1, ensure_ascii=False) + "\n")
                if task.version == "v2":
                    (tmp / f"na_scores{suffix}.json").write_text(json.dumps(na_diff, indent=1) + "\n")
        model.config.extractive_qa = qa_settings(task, threshold)
        write_run_info(tmp, cfg, "finetune", {"task": asdict(task)})
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        keep_training_logs(work, tmp, trainer.state.log_history)
        plot_run(tmp)
    if is_main_process():
        share(out, cfg.hub)  # model card, and the upload when hub.push is set
    sel = metrics["eval"][task.selection_split]
    keys = ("exact_match", "f1") if task.version == "v1" else ("exact", "f1", "HasAns_f1", "NoAns_f1")
    print(f"saved to {out}: {task.selection_split} " + ", ".join(f"{k} {sel[k]:.2f}" for k in keys if k in sel))
    return metrics


def evaluate_qa_model(cfg, task_dict: dict, data_dir: str | None) -> dict[str, Any]:
    """`nlp-ssl evaluate` for an extractive-QA model: its recorded settings and task, or the overrides."""
    from transformers import AutoModelForQuestionAnswering

    from nlp_ssl.config import from_dict
    from nlp_ssl.recipes.finetune import write_json_atomic
    from nlp_ssl.tasks.qa import load_qa_examples, resolve_qa_task
    from nlp_ssl.tokenization import load_tokenizer

    task = resolve_qa_task(from_dict(QATaskConfig, {**task_dict, "type": "extractive_qa"}, f"{cfg.model} task"))
    model = AutoModelForQuestionAnswering.from_pretrained(cfg.model)
    recorded = getattr(model.config, "extractive_qa", None) or {}
    threshold = task.null_threshold if task.null_threshold is not None else recorded.get("null_threshold")
    tokenizer = load_tokenizer(cfg.model)
    wanted = cfg.splits or list(task.eval)
    results: dict[str, Any] = {"model": cfg.model, "eval": {}}
    out = Path(cfg.output_dir) if cfg.output_dir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    for split in wanted:
        if split not in task.eval:
            raise ConfigError([f"splits: no split {split!r}; the task has {list(task.eval)}"])
        rows, _ = load_qa_examples(task.eval[split], data_dir, task.version, task.bad_answers, training=False)
        rows = rows[: cfg.max_eval_samples] if cfg.max_eval_samples else rows  # as the run scored them
        m, preds, _, _ = score_split(model, tokenizer, task, rows, cfg.batch_size, threshold)
        results["eval"][split] = m
        print(f"{split} ({len(rows):,} questions): " + ", ".join(
            f"{k} {v:.2f}" for k, v in m.items() if k in ("exact_match", "exact", "f1", "HasAns_f1", "NoAns_f1")))
        if out:
            write_json_atomic(out / f"predictions-{split}.json", preds)
    if out:
        write_json_atomic(out / "metrics.json", results)
    return results
