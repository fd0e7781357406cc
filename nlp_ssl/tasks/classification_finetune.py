"""Classification and regression in the fine-tuning run loop: the config of `nlp-ssl finetune` for them, the task's
job (`ClassificationJob`: few-label sample, sequence-classification model, scoring, self-training rounds,
predictions and submissions), and scoring a saved model (`nlp-ssl evaluate`). The loop itself (grid x seeds,
curve, checkpoints, saving) is `tasks.run_loop`; both task types are registered in `tasks.registry`.

Example:
    >>> job = ClassificationJob(cfg, data_dir)            # doctest: +SKIP  (task, tokenizer, encoded splits)
    >>> run_one(job, lr=1e-4, seed=1, run_dir=Path("runs/sst2"))["eval"]["dev"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nlp_ssl.data.sources import column
from nlp_ssl.errors import ConfigError, ModelError
from nlp_ssl.layout import METRICS_FILE
from nlp_ssl.outputs import write_json_atomic, write_jsonl_atomic
from nlp_ssl.selection import aggregate
from nlp_ssl.tasks.classification import TaskConfig, resolve_task
from nlp_ssl.tasks.run_loop import Evaluation, FinetuneRunConfig, Roles, TaskJob, chooses
from nlp_ssl.tasks.self_training import SelfTrainingConfig


@dataclass
class FinetuneConfig(FinetuneRunConfig):
    """Config of `nlp-ssl finetune` for classification and regression: the keys of `FinetuneRunConfig`, and these.

    Attributes:
        task: see TaskConfig.
        max_train_samples: train on a seeded, class-stratified sample of this many examples (null: all).
        save_predictions: write predictions-<split>.jsonl (one row per example) into each run.
        self_training: see SelfTrainingConfig.
        pooling: what the classification head reads: `cls` (the first token) or `mean` (the mean of the token
            states; ModernBERT encoders, whose saved head records it, see `tasks.models.classifier_pooling`).
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    self_training: SelfTrainingConfig = field(default_factory=SelfTrainingConfig)
    pooling: Literal["cls", "mean"] = "cls"

    def validate(self) -> list[str]:
        problems = super().validate()
        if self.self_training.rounds and self.task.type == "regression":
            problems.append("self_training.rounds: self-training needs class predictions; not for regression")
        if self.self_training.rounds and (self.train.save_steps or self.train.resume):
            problems.append("train.save_steps / train.resume: mid-run checkpoints are for plain fine-tuning; "
                            "self-training rounds retrain from the start (set save_steps: 0, resume: false)")
        return problems


def best_metric(train, task: TaskConfig) -> str:
    """The selection metric that picks the best weights of a learning curve: train.metric_for_best_model, else the
    task's first metric. `loss` (cross-entropy or squared error on the selection split) is always available."""
    name = train.metric_for_best_model or task.metrics[0]
    if name not in (*task.metrics, "loss"):
        raise ConfigError([f"train.metric_for_best_model: {name!r} is not scored for this task; choose one of "
                           f"{[*task.metrics, 'loss']} (the task's metrics: task.metrics)"])
    return name


def is_oracle(cfg: FinetuneConfig, task: TaskConfig) -> bool:
    """Whether something (the learning rate from a grid, the best weights of a curve) is chosen on the very split
    that is reported: its figures are then optimistic and are labelled `oracle`."""
    return chooses(cfg) and task.selection_split == task.report_split


def roles(cfg: FinetuneConfig, task: TaskConfig) -> Roles:
    """The splits and metrics a resolved task chooses and reports on."""
    return Roles(task.selection_split, task.report_split, task.metrics[0], best_metric(cfg.train, task),
                 is_oracle(cfg, task))


class ClassificationJob(TaskJob):
    """The classification / regression task in the run loop: resolved task, tokenizer, encoded splits, the
    unlabelled pool of self-training, and the files to predict after training (task.predict)."""

    @staticmethod
    def check(cfg: FinetuneConfig) -> None:
        """Config mistakes of the task, before any heavy import."""
        best_metric(cfg.train, resolve_task(cfg.task))

    def __init__(self, cfg: FinetuneConfig, data_dir: str | None):
        from nlp_ssl.tasks.classification import encode, load_task
        from nlp_ssl.tasks.inference import PadCollator, autocast_dtype
        from nlp_ssl.tasks.models import check_fits, check_model_dir, classifier_pooling

        self.cfg = cfg
        self.task = resolve_task(cfg.task)  # config mistakes first, before any heavy import
        self.roles = roles(cfg, self.task)
        self.dtype = autocast_dtype(cfg.train.bf16, cfg.train.fp16)
        check_model_dir(cfg.model, cfg.tokenizer)

        from transformers import AutoConfig

        from nlp_ssl.hub.inputs import local_path
        from nlp_ssl.tokenization import load_tokenizer

        self.tokenizer = load_tokenizer(cfg.tokenizer or cfg.model)
        self.collator = PadCollator(self.tokenizer)
        encoder_config = AutoConfig.from_pretrained(local_path(cfg.model))
        check_fits(self.tokenizer, encoder_config, self.task.max_length)
        self.pooling_kw = classifier_pooling(encoder_config.model_type, cfg.pooling)
        self.splits, self.labels = load_task(self.task, data_dir)
        self.encoded = {name: encode(ds, self.tokenizer, self.task) for name, ds in self.splits.items()}
        from nlp_ssl.tasks.prediction import unlabelled_dataset

        # unlabelled files to predict after training (task.predict): read now, so a bad file fails before training
        self.unlabelled = {name: unlabelled_dataset(src, self.task, data_dir) for name, src in
                           (self.task.predict or {}).items()}
        self.pool = None
        if cfg.self_training.rounds:
            from nlp_ssl.tasks.self_training import load_pool

            self.pool = load_pool(cfg.self_training.unlabeled, self.tokenizer, self.task, data_dir)

    def describe(self) -> str:
        cfg = self.cfg
        return (f"fine-tuning {cfg.model} ({cfg.init}) on {self.task.preset or 'task'}: "
                + ", ".join(f"{k} {len(v):,}" for k, v in self.encoded.items())
                + (f"; {cfg.max_train_samples} training examples per seed" if cfg.max_train_samples else ""))

    @property
    def regression(self) -> bool:
        """One real-valued output (problem_type regression) instead of class logits."""
        return self.task.type == "regression"

    def train_set(self, seed: int):
        from nlp_ssl.tasks.classification import stratified_sample

        train = self.encoded["train"]
        n = self.cfg.max_train_samples
        if n is None:
            return train
        names = None if self.regression else self.labels
        return train.select(stratified_sample(np.asarray(column(train, "labels")), n, seed, names))

    def new_model(self, seed: int):
        from transformers import AutoModelForSequenceClassification

        from nlp_ssl.tasks.models import build_task_model

        kw: dict[str, Any]
        if self.regression:
            kw = dict(num_labels=1, problem_type="regression", id2label={0: "score"}, label2id={"score": 0})
        else:
            kw = dict(num_labels=len(self.labels), problem_type="single_label_classification",
                      id2label=dict(enumerate(self.labels)), label2id={n: i for i, n in enumerate(self.labels)})
        return build_task_model(AutoModelForSequenceClassification, self.cfg.model, self.cfg.init, seed,
                                self.cfg.train.dropout, **kw, **self.pooling_kw)

    def score(self, model, split: str, with_loss: bool = False) -> tuple[dict[str, float], list[dict], float]:
        from nlp_ssl.tasks.classification import prediction_loss, score_predictions
        from nlp_ssl.tasks.inference import predict

        ds = self.encoded[split]
        out, seconds = predict(model, ds, self.collator, self.cfg.train.per_device_eval_batch_size, dtype=self.dtype)
        gold = np.asarray(column(ds, "labels"))
        metrics, rows = score_predictions(out["logits"], gold, self.task, self.labels, np.asarray(column(ds, "idx")))
        if with_loss:
            metrics["loss"] = prediction_loss(out["logits"], gold, self.task.type)
        return metrics, rows, seconds

    def selection_scores(self, model, with_loss: bool = False) -> dict[str, float]:
        return self.score(model, self.roles.selection_split, with_loss)[0]

    def evaluate(self, model) -> Evaluation:
        evals, rows, speed = {}, {}, {}
        for split in self.encoded:
            if split == "train":
                continue
            evals[split], rows[split], seconds = self.score(model, split)
            speed[split] = len(rows[split]) / seconds if seconds else float("nan")
        return Evaluation(evals, speed, rows)

    def refine(self, model, stats, train_set, evaluation, lr, seed, work, fit):
        """Self-training rounds (self_training.rounds): pseudo-label the pool, retrain from the start on the
        labelled examples plus the pseudo-labelled ones, score again."""
        from datasets import concatenate_datasets

        from nlp_ssl.tasks.self_training import pseudo_label

        cfg, task = self.cfg, self.task
        if not cfg.self_training.rounds:
            return model, stats, evaluation, {}
        rounds = [{"round": 0, "train_examples": len(train_set), "eval": evaluation.evals}]
        for r in range(1, cfg.self_training.rounds + 1):
            pseudo, info = pseudo_label(model, self.pool, self.tokenizer, cfg.self_training, self.labels,
                                        cfg.train.per_device_eval_batch_size, r)
            train_r = concatenate_datasets([train_set, pseudo.cast(train_set.features)]) if len(pseudo) else train_set
            model, stats = fit(train_r)
            evaluation = self.evaluate(model)
            rounds.append({**info, "train_examples": len(train_r), "eval": evaluation.evals})
            main = task.metrics[0]
            print(f"  self-training round {r}: {info['pseudo_labels']} pseudo-labels, "
                  f"{task.report_split} {main} {evaluation.evals[task.report_split][main]:.4f}")
        return model, stats, evaluation, {"self_training": rounds}

    def save(self, out: Path, model, evaluation: Evaluation) -> None:
        from nlp_ssl.layout import predictions_file
        from nlp_ssl.tasks.prediction import predict_unlabelled, write_submission

        if self.cfg.save_predictions:
            for split, split_rows in evaluation.extras.items():
                write_jsonl_atomic(out / predictions_file(split), split_rows)
        for name, (ds, ids) in self.unlabelled.items():  # GLUE-style submission files
            preds = predict_unlabelled(model, self.tokenizer, self.task, self.labels, ds,
                                       self.cfg.train.per_device_eval_batch_size, self.dtype)
            write_submission(out / f"submission-{name}.tsv", ids, preds)

    def run_info(self) -> dict[str, Any]:
        return {"labels": self.labels, "train_sample": "a class-stratified sample" if not self.regression else "a random sample"}

    def task_description(self) -> str:
        labels = "" if self.regression else f": {', '.join(map(str, self.labels))}"
        return f"{self.task.type} ({self.task.preset or 'custom'}{labels})"

    def headline(self, metrics: dict) -> str:
        return f"{self.task.report_split} " + headline(metrics, self.task)

    def summary_extra(self, runs: list[dict[str, Any]]) -> dict[str, Any]:
        """The self-training rounds over seeds (mean and std per round)."""
        rounds = self.cfg.self_training.rounds
        if not rounds:
            return {}
        task, main = self.task, self.task.metrics[0]
        out = [{"round": k, "pseudo_labels": [r["self_training"][k].get("pseudo_labels", 0) for r in runs],
                "summary": aggregate([r["self_training"][k] for r in runs])} for k in range(rounds + 1)]
        for k, rnd in enumerate(out):
            m = rnd["summary"][task.report_split][main]
            print(f"self-training round {k}: {task.report_split} {main} {m['mean']:.4f} ± {m['std']:.4f}, "
                  f"pseudo-labels {rnd['pseudo_labels']}")
        return {"self_training_rounds": out}


def headline(metrics: dict, task: TaskConfig) -> str:
    split = metrics["eval"][task.report_split]
    note = " (oracle: chosen on this split)" if metrics.get("oracle") else ""
    return ", ".join(f"{m} {split[m]:.4f}" for m in task.metrics) + note


def evaluate_classifier(model_dir: str, task_dict: dict, splits: list[str] | None, batch_size: int,
                        output_dir: str | None, data_dir: str | None, max_eval_samples: int | None = None) -> dict[str, Any]:
    """`nlp-ssl evaluate` for a sequence-classification model: score `splits` (null: all evaluation splits)."""
    from transformers import AutoModelForSequenceClassification

    from nlp_ssl.config import from_dict
    from nlp_ssl.distributed import is_main_process
    from nlp_ssl.tasks.inference import PadCollator, autocast_dtype, eval_device, precision_of, predict
    from nlp_ssl.tasks.classification import encode, load_task, resolve_task, score_predictions
    from nlp_ssl.tokenization import load_tokenizer

    task = from_dict(TaskConfig, task_dict, source=f"{model_dir} task")
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(eval_device())
    dtype = autocast_dtype(*precision_of(model_dir))  # as the model was trained
    if task.type == "classification":
        # The model's own class names fix the label ids (as it was trained); a task with other classes is
        # another task, which this model cannot be scored on.
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        declared = resolve_task(task).labels
        if declared and sorted(map(str, declared)) != sorted(map(str, names)):
            raise ModelError(f"task: {model_dir} was fine-tuned with the classes {names}, but the task "
                             f"{task.preset or ''} has {list(declared)}; evaluate it on the task it was fine-tuned on "
                             "(leave task.preset unset) or fine-tune a model for this task")
        task = dataclasses.replace(task, labels=names)
    task = resolve_task(task)
    tokenizer = load_tokenizer(model_dir)
    data, labels = load_task(task, data_dir)
    wanted = splits or [s for s in data if s != "train"]
    missing = [s for s in wanted if s not in data]
    if missing:
        raise ConfigError([f"splits: {missing} not in the task; it has {[s for s in data if s != 'train']}"])
    results: dict[str, Any] = {"model": model_dir, "task": task.preset, "eval": {}, "eval_examples_per_second": {}}
    from nlp_ssl.distributed import distributed_world

    main = is_main_process()  # under `accelerate launch` every rank predicts its share; rank 0 alone writes
    world = distributed_world()[1]
    out = Path(output_dir) if output_dir and main else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    for split in wanted:
        examples = data[split]
        if max_eval_samples is not None:
            examples = examples.select(range(min(max_eval_samples, len(examples))))
        ds = encode(examples, tokenizer, task)
        pred, seconds = predict(model, ds, PadCollator(tokenizer), batch_size, dtype=dtype)
        metrics, rows = score_predictions(pred["logits"], np.asarray(column(ds, "labels")), task, labels,
                                          np.asarray(column(ds, "idx")))
        results["eval"][split] = metrics
        results["eval_examples_per_second"][split] = len(ds) / seconds if seconds else float("nan")
        if main:
            print(f"{split} ({len(ds):,} examples" + (f", {world} ranks" if world > 1 else "") + "): " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        if out:
            write_jsonl_atomic(out / f"predictions-{split}.jsonl", rows)
    if out:
        write_json_atomic(out / METRICS_FILE, results)
    return results
