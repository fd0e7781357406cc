"""Fine-tuning runs for extractive question answering: the config, loading examples and windows, training on
windows, scoring splits with n-best post-processing and the official SQuAD metrics (v2: the null threshold
tuned on the selection split), saving the model directory, and scoring a saved model (`nlp-ssl evaluate`).

Example:
    >>> data = load_qa_data(cfg, task, tokenizer, data_dir)
    >>> model, stats = train_qa(cfg, data.train_set, tokenizer, work_dir)
    >>> evals, threshold = score_splits(model, tokenizer, task, data.evals, 256)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp_ssl.errors import ConfigError
from nlp_ssl.finetuning import FinetuneTrainConfig, Init
from nlp_ssl.hub import HubConfig
from nlp_ssl.tasks.qa import ExampleReport, QATaskConfig

INPUTS = ("input_ids", "token_type_ids", "attention_mask")
LABELS = ("start_positions", "end_positions")


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
        train: see FinetuneTrainConfig (per_device_train_batch_size counts windows).
        save_predictions: write predictions.json (official format: id -> answer) and, for v2, na_scores.json
            (null score - best span score per id) for the reported split; predictions-<split>.json (and
            na_scores-<split>.json) for the others.
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
        if len(self.train.learning_rate_grid) != 1:
            problems.append("train.learning_rate: extractive QA runs one learning rate; give one rate, not a grid")
        if self.train.resume and self.overwrite:  # overwrite would remove the checkpoints resume continues from
            problems.append("overwrite and train.resume: choose one")
        for name in ("max_train_samples", "max_eval_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"{name}: must be positive (or null for all)")
        return problems


def features_dataset(feats: dict[str, list]):
    from datasets import Dataset

    keep = [k for k in (*INPUTS, *LABELS, "length") if k in feats]
    return Dataset.from_dict({k: feats[k] for k in keep})


def qa_settings(task: QATaskConfig, threshold: float | None) -> dict[str, Any]:
    """What `nlp-ssl answer` needs to reproduce evaluation's windowing and post-processing."""
    return {"max_length": task.max_length, "doc_stride": task.doc_stride, "max_query_length": task.max_query_length,
            "max_answer_length": task.max_answer_length, "n_best": task.n_best, "version": task.version,
            "null_threshold": 0.0 if threshold is None else float(threshold)}


def setup_qa(cfg: QAFinetuneConfig):
    """Resolve the task and load a fast tokenizer that fits the model -> (task, tokenizer); config errors first."""
    from transformers import AutoConfig

    from nlp_ssl.finetuning import check_fits, check_model_dir
    from nlp_ssl.hub import local_path
    from nlp_ssl.tasks.qa import check_fast_tokenizer, resolve_qa_task
    from nlp_ssl.tokenization import load_tokenizer

    task = resolve_qa_task(cfg.task)
    qa_best_metric(cfg, task)
    check_model_dir(cfg.model, cfg.tokenizer)
    tokenizer = load_tokenizer(cfg.tokenizer or cfg.model)
    check_fast_tokenizer(tokenizer)
    check_fits(tokenizer, AutoConfig.from_pretrained(local_path(cfg.model)), task.max_length)
    return task, tokenizer


@dataclass
class QAData:
    train_rows: list[dict]
    train_report: ExampleReport
    train_set: Any  # Dataset of training windows
    evals: dict[str, list[dict]]

    def describe(self, version: str) -> str:
        r = self.train_report
        problems = r.skipped_bad_answer + r.fixed_answer + r.skipped_empty_context
        return (f"extractive QA ({version}): {len(self.train_rows):,} training questions -> {len(self.train_set):,} "
                "windows; " + ", ".join(f"{k} {len(v):,} questions" for k, v in self.evals.items())
                + (f"; training data: {r.skipped_bad_answer} answers not at answer_start skipped, "
                   f"{r.fixed_answer} fixed, {r.skipped_empty_context} empty contexts skipped "
                   f"(e.g. {r.first_problems[:2]})" if problems else ""))


def load_qa_data(cfg: QAFinetuneConfig, task: QATaskConfig, tokenizer, data_dir: str | None) -> QAData:
    """Training questions (a seeded sample of max_train_samples) and their windows; evaluation questions."""
    from nlp_ssl.tasks.qa import load_qa_examples, train_features

    train_rows, report = load_qa_examples(task.train, data_dir, task.version, task.bad_answers, training=True)
    if cfg.max_train_samples and cfg.max_train_samples < len(train_rows):
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(train_rows), cfg.max_train_samples, replace=False))
        train_rows = [train_rows[i] for i in pick]
    evals = load_eval_rows(task, data_dir, cfg.max_eval_samples)
    return QAData(train_rows, report, features_dataset(train_features(train_rows, tokenizer, task)), evals)


def load_eval_rows(task: QATaskConfig, data_dir: str | None, limit: int | None = None) -> dict[str, list[dict]]:
    """Evaluation questions per split (the first `limit` of each), with the selection split carved out of the
    first eval split when `task.selection_fraction` is set (`qa.carve_selection`)."""
    from nlp_ssl.tasks.qa import carve_selection, is_carved, load_qa_examples

    evals: dict[str, list[dict]] = {}
    for i, (name, src) in enumerate(task.eval.items()):
        rows, _ = load_qa_examples(src, data_dir, task.version, task.bad_answers, training=False)
        if i == 0 and is_carved(task):
            selection, rows = carve_selection(rows, task.selection_fraction, task.split_seed)
            evals["selection"] = selection[:limit] if limit else selection
        evals[name] = rows[:limit] if limit else rows
    return evals


def oracle_flags(cfg: QAFinetuneConfig, task: QATaskConfig) -> dict[str, bool]:
    """What was chosen on the reported split itself (figures then optimistic): the v2 null threshold tuned on it,
    or the best weights of a learning curve scored on it."""
    from nlp_ssl.tasks.qa import report_split

    same = task.selection_split == report_split(task)
    return {"null_threshold_oracle": same and task.version == "v2" and task.null_threshold is None,
            "best_weights_oracle": same and bool(cfg.train.eval_steps)}


QA_BEST_METRICS = ("f1", "exact_match", "exact", "HasAns_f1", "NoAns_f1")


def qa_best_metric(cfg: QAFinetuneConfig, task: QATaskConfig) -> str:
    """The selection metric that picks the best weights: train.metric_for_best_model, else f1."""
    name = cfg.train.metric_for_best_model or "f1"
    allowed = ("f1", "exact_match") if task.version == "v1" else ("f1", "exact", "HasAns_f1", "NoAns_f1")
    if name not in allowed:
        raise ConfigError([f"train.metric_for_best_model: {name!r} is not scored for extractive QA ({task.version}); "
                           f"choose one of {list(allowed)}"])
    return name


def train_qa(cfg: QAFinetuneConfig, task: QATaskConfig, data: QAData, tokenizer, work: str,
             checkpoints: str | None = None, resume_from: str | None = None,
             dtype=None) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    """Build the QA model on the encoder and train it on the windows -> (trainer, training stats, learning curve).

    With `train.eval_steps`, the model is scored on the selection split every that many steps (F1 or
    train.metric_for_best_model, the task's null threshold or the best one on that split), the best weights are
    kept (and training stops early after `train.early_stopping_patience` evaluations without a new best); the
    curve is returned, else None. `checkpoints`: the folder of mid-run checkpoints (train.save_steps);
    `resume_from`: the complete checkpoint to continue from.
    """
    from transformers import AutoModelForQuestionAnswering

    from nlp_ssl.finetuning import PadCollator, build_task_model, selection_early_stopping, train, training_arguments

    tc = cfg.train
    lr = tc.learning_rate_grid[0]
    model = build_task_model(AutoModelForQuestionAnswering, cfg.model, cfg.init, cfg.seed, tc.dropout)
    args = training_arguments(checkpoints or work, tc, lr, cfg.seed, checkpoints=checkpoints is not None,
                              label_names=list(LABELS))
    curve, metric = None, qa_best_metric(cfg, task)
    if tc.eval_steps:  # learning curve on the selection split, best weights kept, optional early stop
        selection = data.evals[task.selection_split]
        curve = selection_early_stopping(
            lambda m: score_split(m, tokenizer, task, selection, tc.per_device_eval_batch_size, task.null_threshold, dtype)[0],
            metric, tc.eval_steps, tc.early_stopping_patience, tc.best_is_greater(), tc.load_best_model_at_end)
    trainer, stats = train(model, args, data.train_set, PadCollator(tokenizer, keep=(*INPUTS, *LABELS)), tokenizer,
                           tc.layer_lr_decay, (curve,) if curve else (), checkpoint=resume_from)
    record = None if curve is None else {
        "split": task.selection_split, "metric": metric, "best_step": curve.best_step, "best": curve.best,
        "greater_is_better": tc.best_is_greater(), "stopped_early": curve.stopped and stats["steps"] < trainer.state.max_steps, "points": curve.curve}
    return trainer, stats, record


def score_split(model, tokenizer, task: QATaskConfig, rows: list[dict], batch_size: int, threshold: float | None,
                dtype=None):
    """Predict (under autocast to `dtype`, as training), post-process and score one split -> (metrics, official
    predictions, na scores, threshold used)."""
    from nlp_ssl.finetuning import PadCollator, predict
    from nlp_ssl.tasks.qa import eval_features, final_answers, postprocess, score

    feats = eval_features(rows, tokenizer, task)
    out, seconds = predict(model, features_dataset(feats), PadCollator(tokenizer, keep=INPUTS), batch_size,
                           ("start_logits", "end_logits"), dtype=dtype)
    answers, na_diff, _ = postprocess(rows, feats, out["start_logits"], out["end_logits"], task.n_best,
                                      task.max_answer_length)
    metrics, used = score(rows, answers, na_diff, task.version, threshold)
    metrics["features"] = len(feats["input_ids"])
    metrics["eval_features_per_second"] = len(feats["input_ids"]) / seconds if seconds else float("nan")
    if used is not None:
        metrics["null_threshold"] = used
    return metrics, final_answers(answers, na_diff, task.version, used or 0.0), na_diff, used


def score_splits(model, tokenizer, task: QATaskConfig, evals: dict[str, list[dict]], batch_size: int, dtype=None):
    """Score every split, the selection split first: for v2 it tunes the null threshold the others then use.

    Returns ({split: (metrics, predictions, na scores)}, the threshold used).
    """
    order = [task.selection_split] + [s for s in evals if s != task.selection_split]
    threshold = task.null_threshold
    scored = {}
    for split in order:
        m, preds, na_diff, used = score_split(model, tokenizer, task, evals[split], batch_size, threshold, dtype)
        threshold = used if threshold is None else threshold
        scored[split] = (m, preds, na_diff)
    return scored, threshold


def save_qa_run(tmp: Path, logs_dir: str, cfg: QAFinetuneConfig, task: QATaskConfig, trainer, tokenizer, metrics: dict,
                scored: dict, threshold: float | None, curve: dict | None = None) -> None:
    """The model directory (config.json records the QA settings `nlp-ssl answer` uses), predictions, metrics,
    training logs and plots."""
    from nlp_ssl.finetuning import keep_training_logs
    from nlp_ssl.plots import plot_run
    from nlp_ssl.runinfo import write_run_info

    model = trainer.model
    if curve is not None:
        (tmp / "learning_curve.json").write_text(json.dumps(curve, indent=1) + "\n")
    from nlp_ssl.tasks.qa import report_split

    if cfg.save_predictions:
        for split, (_, preds, na_diff) in scored.items():
            suffix = "" if split == report_split(task) else f"-{split}"
            (tmp / f"predictions{suffix}.json").write_text(json.dumps(preds, indent=1, ensure_ascii=False) + "\n")
            if task.version == "v2":
                (tmp / f"na_scores{suffix}.json").write_text(json.dumps(na_diff, indent=1) + "\n")
    model.config.extractive_qa = qa_settings(task, threshold)
    write_run_info(tmp, cfg, "finetune", {"task": asdict(task)})
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    keep_training_logs(logs_dir, tmp, trainer.state.log_history)
    plot_run(tmp)


def run_metrics(cfg: QAFinetuneConfig, task: QATaskConfig, data: QAData, stats: dict, scored: dict,
                curve: dict | None = None) -> dict[str, Any]:
    from nlp_ssl.tasks.qa import report_split

    metrics = {"learning_rate": cfg.train.learning_rate_grid[0], "seed": cfg.seed, "init": cfg.init,
               "train_questions": len(data.train_rows), "train_features": len(data.train_set),
               "train_features_per_second": stats.pop("train_examples_per_second"), **stats,
               "train_data": asdict(data.train_report), "selection_split": task.selection_split,
               "report_split": report_split(task), **oracle_flags(cfg, task)}
    if curve is not None:
        metrics["best_step"] = curve["best_step"]
    return {**metrics, "eval": {split: s[0] for split, s in scored.items()}}


def headline(metrics: dict, task: QATaskConfig) -> str:
    from nlp_ssl.tasks.qa import report_split

    split = report_split(task)
    rep = metrics["eval"][split]
    keys = ("exact_match", "f1") if task.version == "v1" else ("exact", "f1", "HasAns_f1", "NoAns_f1")
    oracle = [k.replace("_oracle", "").replace("_", " ") for k in ("null_threshold_oracle", "best_weights_oracle")
              if metrics.get(k)]
    note = f" (oracle: {', '.join(oracle)} chosen on this split)" if oracle else \
        (f" ({task.selection_split} chose the null threshold)" if task.version == "v2" and split != task.selection_split else "")
    return f"{split} " + ", ".join(f"{k} {rep[k]:.2f}" for k in keys if k in rep) + note


def evaluate_qa_model(model_dir: str, task_dict: dict, splits: list[str] | None, batch_size: int,
                      output_dir: str | None, data_dir: str | None, max_eval_samples: int | None = None) -> dict[str, Any]:
    """`nlp-ssl evaluate` for an extractive-QA model: its recorded settings and task, or the overrides."""
    from transformers import AutoModelForQuestionAnswering

    from nlp_ssl.config import from_dict
    from nlp_ssl.outputs import write_json_atomic
    from nlp_ssl.tasks.qa import is_carved, resolve_qa_task
    from nlp_ssl.tokenization import load_tokenizer

    task = resolve_qa_task(from_dict(QATaskConfig, {**task_dict, "type": "extractive_qa"}, f"{model_dir} task"))
    from nlp_ssl.finetuning import autocast_dtype, eval_device, is_main_process, precision_of

    model = AutoModelForQuestionAnswering.from_pretrained(model_dir).to(eval_device())
    dtype = autocast_dtype(*precision_of(model_dir))  # as the model was trained
    recorded = getattr(model.config, "extractive_qa", None) or {}
    threshold = task.null_threshold if task.null_threshold is not None else recorded.get("null_threshold")
    tokenizer = load_tokenizer(model_dir)
    names = (["selection"] if is_carved(task) else []) + list(task.eval)
    wanted = splits or names
    unknown = [s for s in wanted if s not in names]
    if unknown:
        raise ConfigError([f"splits: no split {unknown[0]!r}; the task has {names}"])
    evals = load_eval_rows(task, data_dir, max_eval_samples)  # as the run scored them (and carved them)
    results: dict[str, Any] = {"model": model_dir, "eval": {}}
    main = is_main_process()  # under `accelerate launch` every rank predicts its share; rank 0 alone writes
    out = Path(output_dir) if output_dir and main else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    for split in wanted:
        rows = evals[split]
        m, preds, _, _ = score_split(model, tokenizer, task, rows, batch_size, threshold, dtype)
        results["eval"][split] = m
        if main:
            print(f"{split} ({len(rows):,} questions): " + ", ".join(
                f"{k} {v:.2f}" for k, v in m.items() if k in ("exact_match", "exact", "f1", "HasAns_f1", "NoAns_f1")))
        if out:
            write_json_atomic(out / f"predictions-{split}.json", preds)
    if out:
        write_json_atomic(out / "metrics.json", results)
    return results
