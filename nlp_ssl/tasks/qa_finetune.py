"""Extractive question answering in the fine-tuning run loop: the config, loading examples and windows, the task's
job (`QAJob`: training on windows, scoring splits with n-best post-processing and the official SQuAD metrics, v2's
null threshold tuned on the selection split, predictions in the official format, the QA settings `nlp-ssl answer`
reads from config.json), and scoring a saved model (`nlp-ssl evaluate`). The loop itself (grid x seeds, curve,
checkpoints, saving) is `tasks.run_loop`; the task is registered in `tasks.registry` as `extractive_qa`.

Example:
    >>> job = QAJob(cfg, data_dir)                                   # doctest: +SKIP
    >>> evaluation = job.evaluate(model)                             # doctest: +SKIP
    >>> evaluation.evals["dev"]["f1"], evaluation.extras.threshold   # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp_ssl.errors import ConfigError
from nlp_ssl.layout import METRICS_FILE
from nlp_ssl.tasks.qa import QATaskConfig, report_split, resolve_qa_task
from nlp_ssl.tasks.run_loop import Evaluation, FinetuneRunConfig, Roles, TaskJob, chooses

INPUTS = ("input_ids", "token_type_ids", "attention_mask")
LABELS = ("start_positions", "end_positions")


@dataclass
class QAFinetuneConfig(FinetuneRunConfig):
    """Config of `nlp-ssl finetune` for extractive question answering: the keys of `FinetuneRunConfig`, and these.

    Attributes:
        tokenizer: the tokenizer directory, when the model directory has none (it must be a fast tokenizer).
        task: see QATaskConfig.
        max_train_samples: train on a seeded random sample of this many questions (null: all).
        train: see FinetuneTrainConfig (per_device_train_batch_size counts windows; a list of learning rates is
            a grid scored by F1 on the selection split).
        save_predictions: write predictions.json (official format: id -> answer) and, for v2, na_scores.json
            (null score - best span score per id) for the reported split; predictions-<split>.json (and
            na_scores-<split>.json) for the others.
        max_eval_samples: score only the first N questions of each evaluation split (quick runs; null: all).
    """

    task: QATaskConfig = field(default_factory=QATaskConfig)
    max_eval_samples: int | None = None

    def validate(self) -> list[str]:
        problems = super().validate()
        if self.max_eval_samples is not None and self.max_eval_samples < 1:
            problems.append("max_eval_samples: must be positive (or null for all)")
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


def score_split(model, tokenizer, task: QATaskConfig, rows: list[dict], batch_size: int, threshold: float | None,
                dtype=None):
    """Predict (under autocast to `dtype`, as training), post-process and score one split -> (metrics, official
    predictions, na scores, threshold used)."""
    from nlp_ssl.tasks.inference import PadCollator, predict
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


@dataclass
class Scored:
    """What scoring the evaluation splits keeps for saving: {split: (official predictions, na scores)} and the
    v2 null threshold used (tuned on the selection split, or the task's)."""

    predictions: dict[str, tuple[dict, dict]]
    threshold: float | None


def qa_roles(cfg: QAFinetuneConfig, task: QATaskConfig) -> Roles:
    """The grid is scored by F1 on the selection split; the curve by train.metric_for_best_model (else F1). The
    figures are `oracle` when anything is chosen on the reported split: the rate or the best weights, or (v2) the
    null threshold tuned on it."""
    same = task.selection_split == report_split(task)
    threshold_tuned = task.version == "v2" and task.null_threshold is None
    return Roles(task.selection_split, report_split(task), "f1", qa_best_metric(cfg, task),
                 same and (chooses(cfg) or threshold_tuned))


class QAJob(TaskJob):
    """Extractive QA in the run loop: resolved task, fast tokenizer, training questions (sampled per seed) and
    their windows, evaluation questions."""

    label_names = list(LABELS)

    @staticmethod
    def check(cfg: QAFinetuneConfig) -> None:
        """Config mistakes of the task, before any heavy import."""
        qa_best_metric(cfg, resolve_qa_task(cfg.task))

    def __init__(self, cfg: QAFinetuneConfig, data_dir: str | None):
        from transformers import AutoConfig

        from nlp_ssl.hub.inputs import local_path
        from nlp_ssl.tasks.inference import PadCollator, autocast_dtype
        from nlp_ssl.tasks.models import check_fits, check_model_dir
        from nlp_ssl.tasks.qa import check_fast_tokenizer, load_qa_examples
        from nlp_ssl.tokenization import load_tokenizer

        self.cfg = cfg
        self.task = task = resolve_qa_task(cfg.task)
        self.roles = qa_roles(cfg, task)
        check_model_dir(cfg.model, cfg.tokenizer)
        self.tokenizer = load_tokenizer(cfg.tokenizer or cfg.model)
        check_fast_tokenizer(self.tokenizer)
        check_fits(self.tokenizer, AutoConfig.from_pretrained(local_path(cfg.model)), task.max_length)
        self.collator = PadCollator(self.tokenizer, keep=(*INPUTS, *LABELS))
        self.dtype = autocast_dtype(cfg.train.bf16, cfg.train.fp16)  # evaluation as training
        self.train_rows, self.train_report = load_qa_examples(task.train, data_dir, task.version, task.bad_answers,
                                                              training=True)
        self.evals = load_eval_rows(task, data_dir, cfg.max_eval_samples)
        self._questions: dict[int, int] = {}  # seed -> training questions of its sample

    def sample(self, seed: int) -> list[dict]:
        """The training questions of the run with this seed (a seeded sample of max_train_samples, or all)."""
        rows, n = self.train_rows, self.cfg.max_train_samples
        if n and n < len(rows):
            pick = np.sort(np.random.default_rng(seed).choice(len(rows), n, replace=False))
            rows = [rows[i] for i in pick]
        return rows

    def describe(self) -> str:
        r, n = self.train_report, len(self.sample(self.cfg.seeds[0]))
        problems = r.skipped_bad_answer + r.fixed_answer + r.skipped_empty_context
        return (f"extractive QA ({self.task.version}): {n:,} training questions per seed; "
                + ", ".join(f"{k} {len(v):,} questions" for k, v in self.evals.items())
                + (f"; training data: {r.skipped_bad_answer} answers not at answer_start skipped, "
                   f"{r.fixed_answer} fixed, {r.skipped_empty_context} empty contexts skipped "
                   f"(e.g. {r.first_problems[:2]})" if problems else ""))

    def train_set(self, seed: int):
        from nlp_ssl.tasks.qa import train_features

        rows = self.sample(seed)
        self._questions[seed] = len(rows)
        ds = features_dataset(train_features(rows, self.tokenizer, self.task))
        print(f"  {len(rows):,} training questions -> {len(ds):,} windows", flush=True)
        return ds

    def new_model(self, seed: int):
        from transformers import AutoModelForQuestionAnswering

        from nlp_ssl.tasks.models import build_task_model

        return build_task_model(AutoModelForQuestionAnswering, self.cfg.model, self.cfg.init, seed,
                                self.cfg.train.dropout)

    def selection_scores(self, model, with_loss: bool = False) -> dict[str, float]:
        # the task's null threshold, or the best one on the selection split itself
        return score_split(model, self.tokenizer, self.task, self.evals[self.task.selection_split],
                           self.cfg.train.per_device_eval_batch_size, self.task.null_threshold, self.dtype)[0]

    def evaluate(self, model) -> Evaluation:
        """Every split, the selection split first (for v2 it tunes the null threshold the others use)."""
        scored, threshold = score_splits(model, self.tokenizer, self.task, self.evals,
                                         self.cfg.train.per_device_eval_batch_size, self.dtype)
        evals = {split: m for split, (m, _, _) in scored.items()}
        speed = {split: m["eval_features_per_second"] * len(self.evals[split]) / m["features"] if m.get("features")
                 else float("nan") for split, m in evals.items()}  # questions per second
        return Evaluation(evals, speed, Scored({s: (p, na) for s, (_, p, na) in scored.items()}, threshold))

    def run_metrics(self, seed: int, stats: dict[str, Any], train_set, evaluation: Evaluation) -> dict[str, Any]:
        stats = dict(stats)
        questions = self._questions.get(seed, len(self.sample(seed)))
        return {"train_examples": questions, "train_questions": questions, "train_features": len(train_set),
                "train_features_per_second": stats.pop("train_examples_per_second"), **stats,
                "train_data": asdict(self.train_report), **oracle_flags(self.cfg, self.task)}

    def save(self, out: Path, model, evaluation: Evaluation) -> None:
        """Predictions in the official format (the reported split's as predictions.json, v2: na_scores.json), the
        per-question rows the report bootstraps over (predictions-<split>.jsonl), and the QA settings `nlp-ssl
        answer` reproduces evaluation with, in the model's config.json."""
        from nlp_ssl.layout import predictions_file
        from nlp_ssl.outputs import write_jsonl_atomic
        from nlp_ssl.squad_metrics import prediction_rows

        task, scored = self.task, evaluation.extras
        if self.cfg.save_predictions:
            for split, (preds, na_diff) in scored.predictions.items():
                suffix = "" if split == report_split(task) else f"-{split}"
                (out / f"predictions{suffix}.json").write_text(json.dumps(preds, indent=1, ensure_ascii=False) + "\n")
                if task.version == "v2":
                    (out / f"na_scores{suffix}.json").write_text(json.dumps(na_diff, indent=1) + "\n")
                # each question's answer beside its references: `nlp-ssl report` bootstraps EM/F1 over questions
                refs = {r["id"]: list(r["answers"]["text"]) for r in self.evals[split]}
                write_jsonl_atomic(out / predictions_file(split), prediction_rows(preds, refs))
        model.config.extractive_qa = qa_settings(task, scored.threshold)

    def run_info(self) -> dict[str, Any]:
        # the resolved task (version, windows) for the card and `answer`
        return {"task": asdict(self.task), "train_sample": "a random sample of questions"}

    def task_description(self) -> str:
        v = self.task.version
        return f"extractive question answering (SQuAD {v}.{'1' if v == 'v1' else '0'} style)"

    def headline(self, metrics: dict) -> str:
        return headline(metrics, self.task)


def headline(metrics: dict, task: QATaskConfig) -> str:
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
    from nlp_ssl.tasks.qa import is_carved
    from nlp_ssl.tokenization import load_tokenizer

    task = resolve_qa_task(from_dict(QATaskConfig, {**task_dict, "type": QATaskConfig.type}, f"{model_dir} task"))
    from nlp_ssl.distributed import is_main_process
    from nlp_ssl.tasks.inference import autocast_dtype, eval_device, precision_of

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
        write_json_atomic(out / METRICS_FILE, results)
    return results
