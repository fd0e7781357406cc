"""Fine-tuning runs for classification and regression: the config of `nlp-ssl finetune`, one run (few-label
sample -> train -> [self-training rounds] -> score every evaluation split -> save a model directory), the summary
over a learning-rate grid and seeds, and scoring a saved model (`nlp-ssl evaluate`).

Example:
    >>> job = ClassificationJob(cfg, data_dir)            # task, tokenizer, encoded splits
    >>> metrics = job.run(lr=1e-4, seed=1, run_dir=Path("runs/sst2"))
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from nlp_ssl.config import to_dict
from nlp_ssl.data.sources import column
from nlp_ssl.errors import ConfigError, ModelError
from nlp_ssl.finetuning import FinetuneTrainConfig, Init
from nlp_ssl.hub import HubConfig
from nlp_ssl.outputs import comparable_config, write_json_atomic, write_jsonl_atomic
from nlp_ssl.runinfo import RunClock, content_key, write_run_info
from nlp_ssl.selection import GridResult, aggregate
from nlp_ssl.tasks.classification import TaskConfig
from nlp_ssl.tasks.self_training import SelfTrainingConfig


@dataclass
class FinetuneConfig:
    """Config of `nlp-ssl finetune` for classification and regression.

    Attributes:
        output_dir: with one seed and one learning rate, the model directory itself; otherwise a directory
            of runs (`lr<rate>-seed<seed>/`, each a model directory) with the summary in metrics.json.
        model: the pretrained encoder: a directory (written by `nlp-ssl pretrain`), or a Hub id such as
            `bert-base-uncased` (downloaded once into the Hub cache), or any HF encoder saved
            with its tokenizer).
        tokenizer: the tokenizer directory, when the model directory has none.
        init: `pretrained` (the encoder's weights) or `scratch` (the same architecture, randomly initialised).
        task: see TaskConfig.
        max_train_samples: train on a seeded, class-stratified sample of this many examples (null: all).
        seed: the seed of the sample, head initialisation and data order; or a list of seeds: one run per
            seed, summary = mean and std over them (`--seeds 1,2,3` on the command line).
        train: see FinetuneTrainConfig.
        self_training: see SelfTrainingConfig.
        save_predictions: write predictions-<split>.jsonl (one row per example) into each run.
        overwrite: replace an output_dir that holds another run.
        pooling: what the classification head reads: `cls` (the first token) or `mean` (the mean of the token
            states; ModernBERT encoders, whose saved head records it, see `finetuning.classifier_pooling`).
        hub: push the model when the run finishes (a grid of runs: the chosen rate's first seed); see HubConfig.
    """

    output_dir: str
    model: str
    tokenizer: str | None = None
    init: Init = "pretrained"
    task: TaskConfig = field(default_factory=TaskConfig)
    max_train_samples: int | None = None
    seed: int | list[int] = 1
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    self_training: SelfTrainingConfig = field(default_factory=SelfTrainingConfig)
    save_predictions: bool = True
    overwrite: bool = False
    pooling: Literal["cls", "mean"] = "cls"
    hub: HubConfig = field(default_factory=HubConfig)

    # old spellings, refused with the new name (and migrated when an older run's config.yaml is read)
    RENAMED: ClassVar[dict[str, str]] = {"seeds": "seed"}

    @property
    def seeds(self) -> list[int]:
        """`seed` as a list (one seed, or several)."""
        return list(self.seed) if isinstance(self.seed, (list, tuple)) else [self.seed]

    def validate(self) -> list[str]:
        problems = []
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            problems.append(f"seed: one seed, or a list of distinct seeds, got {self.seed}")
        if self.train.resume and self.overwrite:  # overwrite would remove the checkpoints resume continues from
            problems.append("overwrite and train.resume: choose one")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            problems.append("max_train_samples: must be positive (or null for all)")
        if self.self_training.rounds and self.task.type == "regression":
            problems.append("self_training.rounds: self-training needs class predictions; not for regression")
        if self.self_training.rounds and (self.train.save_steps or self.train.resume):
            problems.append("train.save_steps / train.resume: mid-run checkpoints are for plain fine-tuning; "
                            "self-training rounds retrain from the start (set save_steps: 0, resume: false)")
        return problems


def run_key(cfg: FinetuneConfig, lr: float, seed: int) -> str:
    """What identifies a run's result: the config (without where it is written) plus its rate and seed."""
    return content_key({"config": comparable_config(to_dict(replace(cfg, seed=[]))), "lr": lr, "seed": seed})


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
    chooses = len(cfg.train.learning_rate_grid) > 1 or bool(cfg.train.eval_steps)
    return chooses and task.selection_split == task.report_split


def headline(metrics: dict, task: TaskConfig) -> str:
    split = metrics["eval"][task.report_split]
    note = " (oracle: chosen on this split)" if metrics.get("oracle") else ""
    return ", ".join(f"{m} {split[m]:.4f}" for m in task.metrics) + note


class ClassificationJob:
    """Everything shared by the runs of one config: resolved task, tokenizer, encoded splits, unlabelled pool."""

    def __init__(self, cfg: FinetuneConfig, data_dir: str | None):
        from nlp_ssl.finetuning import check_fits, check_model_dir
        from nlp_ssl.tasks.classification import encode, load_task, resolve_task

        self.cfg = cfg
        self.task = resolve_task(cfg.task)  # config mistakes first, before any heavy import
        self.best_metric = best_metric(cfg.train, self.task)
        from nlp_ssl.finetuning import autocast_dtype

        self.dtype = autocast_dtype(cfg.train.bf16, cfg.train.fp16)
        check_model_dir(cfg.model, cfg.tokenizer)

        from transformers import AutoConfig

        from nlp_ssl.hub import local_path
        from nlp_ssl.tokenization import load_tokenizer

        self.tokenizer = load_tokenizer(cfg.tokenizer or cfg.model)
        encoder_config = AutoConfig.from_pretrained(local_path(cfg.model))
        check_fits(self.tokenizer, encoder_config, self.task.max_length)
        from nlp_ssl.finetuning import classifier_pooling

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

    def train_sample(self, seed: int):
        from nlp_ssl.tasks.classification import stratified_sample

        train = self.encoded["train"]
        n = self.cfg.max_train_samples
        if n is None:
            return train
        names = self.labels if self.task.type == "classification" else None
        return train.select(stratified_sample(np.asarray(column(train, "labels")), n, seed, names))

    def new_model(self, seed: int):
        from transformers import AutoModelForSequenceClassification

        from nlp_ssl.finetuning import build_task_model

        kw: dict[str, Any]
        if self.task.type == "regression":
            kw = dict(num_labels=1, problem_type="regression", id2label={0: "score"}, label2id={"score": 0})
        else:
            kw = dict(num_labels=len(self.labels), problem_type="single_label_classification",
                      id2label=dict(enumerate(self.labels)), label2id={n: i for i, n in enumerate(self.labels)})
        return build_task_model(AutoModelForSequenceClassification, self.cfg.model, self.cfg.init, seed,
                                self.cfg.train.dropout, **kw, **self.pooling_kw)

    def fit(self, train_set, lr: float, seed: int, work: str, checkpoints: str | None = None,
            resume_from: str | None = None):
        """Train one model; `checkpoints`: the folder of its mid-run checkpoints (train.save_steps), `resume_from`:
        the complete checkpoint to continue from."""
        from nlp_ssl.finetuning import PadCollator, train, training_arguments

        model = self.new_model(seed)
        tc = self.cfg.train
        args = training_arguments(checkpoints or work, tc, lr, seed, checkpoints=checkpoints is not None)
        curve, sel, metric = None, self.task.selection_split, self.best_metric
        if tc.eval_steps:  # a curve on the selection split, best weights kept (as for QA)
            from nlp_ssl.finetuning import selection_early_stopping

            curve = selection_early_stopping(lambda m: self.score(m, sel, with_loss=metric == "loss")[0], metric,
                                             tc.eval_steps, tc.early_stopping_patience, tc.best_is_greater(),
                                             tc.load_best_model_at_end)
        trainer, stats = train(model, args, train_set, PadCollator(self.tokenizer), self.tokenizer,
                               tc.layer_lr_decay, (curve,) if curve else (), checkpoint=resume_from)
        self.log_history, self.logs_dir = trainer.state.log_history, args.output_dir
        self.curve = None if curve is None else {"split": sel, "metric": metric, "best_step": curve.best_step,
                                                 "best": curve.best, "greater_is_better": tc.best_is_greater(),
                                                 "stopped_early": curve.stopped and stats["steps"] < trainer.state.max_steps,
                                                 "points": curve.curve}
        return trainer.model, stats

    def score(self, model, split: str, with_loss: bool = False) -> tuple[dict[str, float], list[dict], float]:
        from nlp_ssl.finetuning import PadCollator, predict
        from nlp_ssl.tasks.classification import prediction_loss, score_predictions

        ds = self.encoded[split]
        out, seconds = predict(model, ds, PadCollator(self.tokenizer), self.cfg.train.per_device_eval_batch_size, dtype=self.dtype)
        gold = np.asarray(column(ds, "labels"))
        metrics, rows = score_predictions(out["logits"], gold, self.task, self.labels, np.asarray(column(ds, "idx")))
        if with_loss:
            metrics["loss"] = prediction_loss(out["logits"], gold, self.task.type)
        return metrics, rows, seconds

    def evaluate_all(self, model) -> tuple[dict, dict, dict]:
        evals, rows, speed = {}, {}, {}
        for split in self.encoded:
            if split == "train":
                continue
            evals[split], rows[split], seconds = self.score(model, split)
            speed[split] = len(rows[split]) / seconds if seconds else float("nan")
        return evals, rows, speed

    def run(self, lr: float, seed: int, run_dir: Path, checkpoints: Path | None = None) -> dict[str, Any]:
        """Train (and self-train), score, and save one run into `run_dir` (written atomically). With
        train.save_steps, mid-run checkpoints go to `checkpoints` (kept across an interruption; with
        train.resume the run continues from the latest complete one) and are removed once the run is saved."""
        from datasets import concatenate_datasets

        from nlp_ssl.atomic import scratch_dir
        from nlp_ssl.finetuning import keep_training_logs, main_process_output, save_model_dir
        from nlp_ssl.hub import write_model_card
        from nlp_ssl.plots import plot_run
        from nlp_ssl.tasks.self_training import pseudo_label

        cfg, task = self.cfg, self.task
        from nlp_ssl.finetuning import checkpoint_to_resume

        clock = RunClock()  # the run's provenance (commit, versions, machine, load at start and end)
        labelled = self.train_sample(seed)
        checkpoints = checkpoints if cfg.train.save_steps else None
        resume_from = checkpoint_to_resume(checkpoints, cfg.train.resume) if checkpoints else None
        with main_process_output(run_dir) as tmp, scratch_dir(run_dir) as work:
            model, stats = self.fit(labelled, lr, seed, str(work), str(checkpoints) if checkpoints else None,
                                    resume_from)
            evals, rows, speed = self.evaluate_all(model)
            rounds = [{"round": 0, "train_examples": len(labelled), "eval": evals}]
            for r in range(1, cfg.self_training.rounds + 1):
                pseudo, info = pseudo_label(model, self.pool, self.tokenizer, cfg.self_training, self.labels,
                                            cfg.train.per_device_eval_batch_size, r)
                train_r = concatenate_datasets([labelled, pseudo.cast(labelled.features)]) if len(pseudo) else labelled
                model, stats = self.fit(train_r, lr, seed, work)
                evals, rows, speed = self.evaluate_all(model)
                rounds.append({**info, "train_examples": len(train_r), "eval": evals})
                print(f"  self-training round {r}: {info['pseudo_labels']} pseudo-labels, "
                      f"{task.report_split} {task.metrics[0]} {evals[task.report_split][task.metrics[0]]:.4f}")
            metrics = {"learning_rate": lr, "seed": seed, "init": cfg.init, "train_examples": len(labelled),
                       **stats, "eval": evals, "eval_examples_per_second": speed,
                       "selection_split": task.selection_split, "report_split": task.report_split,
                       "oracle": is_oracle(cfg, task), "run_key": run_key(cfg, lr, seed),
                       "provenance": clock.provenance()}
            if self.curve:  # the step whose weights were kept (load_best_model_at_end) and why training ended
                metrics.update(best_step=self.curve["best_step"], stopped_early=self.curve["stopped_early"])
            if cfg.self_training.rounds:
                metrics["self_training"] = rounds
            # this run's rate and seed, written as the config gave them (a value, or a list of one)
            as_given = lambda given, v: [v] if isinstance(given, list) else v  # noqa: E731
            run_cfg = replace(cfg, output_dir=str(run_dir), seed=as_given(cfg.seed, seed),
                              train=replace(cfg.train, learning_rate=as_given(cfg.train.learning_rate, lr)))
            write_run_info(tmp, run_cfg, "finetune", {"labels": self.labels})
            save_model_dir(tmp, model, self.tokenizer, metrics)
            keep_training_logs(self.logs_dir, tmp, self.log_history)
            if self.curve:
                (tmp / "learning_curve.json").write_text(json.dumps(self.curve, indent=1) + "\n")
            plot_run(tmp)
            write_model_card(tmp)
            if cfg.save_predictions:
                for split, split_rows in rows.items():
                    write_jsonl_atomic(tmp / f"predictions-{split}.jsonl", split_rows)
            from nlp_ssl.tasks.prediction import predict_unlabelled, write_submission

            for name, (ds, ids) in self.unlabelled.items():  # GLUE-style submission files
                preds = predict_unlabelled(model, self.tokenizer, task, self.labels, ds,
                                           cfg.train.per_device_eval_batch_size, self.dtype)
                write_submission(tmp / f"submission-{name}.tsv", ids, preds)
        if checkpoints is not None:  # the run is saved: its checkpoints are spent (inside run_dir: already gone)
            import shutil

            shutil.rmtree(checkpoints, ignore_errors=True)
        return metrics


def grid_summary(cfg: FinetuneConfig, task: TaskConfig, result: GridResult) -> dict[str, Any]:
    """The summary of a grid-and-seeds run (metrics.json of output_dir), printed as it is built."""
    main_metric, runs, best = task.metrics[0], result.runs, result.best_learning_rate
    summary = {
        "task": task.preset, "init": cfg.init, "model": cfg.model, "max_train_samples": cfg.max_train_samples,
        "seeds": cfg.seeds, "selection": {"split": task.selection_split, "metric": main_metric,
                                          "grid": {f"{lr:g}": s for lr, s in result.scores.items()},
                                          "best_learning_rate": best, "oracle": is_oracle(cfg, task)},
        "report_split": task.report_split, "summary": aggregate(runs),
        "runs": [{k: r[k] for k in ("seed", "learning_rate", "eval", "train_seconds", "train_examples_per_second",
                                    "self_training") if k in r} for r in runs],
    }
    if cfg.self_training.rounds:
        summary["self_training_rounds"] = [
            {"round": k, "pseudo_labels": [r["self_training"][k].get("pseudo_labels", 0) for r in runs],
             "summary": aggregate([r["self_training"][k] for r in runs])}
            for k in range(cfg.self_training.rounds + 1)]
        for k, rnd in enumerate(summary["self_training_rounds"]):
            m = rnd["summary"][task.report_split][main_metric]
            print(f"self-training round {k}: {task.report_split} {main_metric} {m['mean']:.4f} ± {m['std']:.4f}, "
                  f"pseudo-labels {rnd['pseudo_labels']}")
    for split, ms in summary["summary"].items():
        role = {task.selection_split: "selection", task.report_split: "reported"}.get(split, "")
        if split == task.report_split and summary["selection"]["oracle"]:
            role = "reported, oracle: the learning rate was chosen on this split"
        print(f"{split}: " + ", ".join(f"{m} {v['mean']:.4f} ± {v['std']:.4f}" for m, v in ms.items())
              + f" (lr {best:g}, seeds {cfg.seeds}{'; ' + role if role else ''})")
    return summary


def evaluate_classifier(model_dir: str, task_dict: dict, splits: list[str] | None, batch_size: int,
                        output_dir: str | None, data_dir: str | None, max_eval_samples: int | None = None) -> dict[str, Any]:
    """`nlp-ssl evaluate` for a sequence-classification model: score `splits` (null: all evaluation splits)."""
    from transformers import AutoModelForSequenceClassification

    from nlp_ssl.config import from_dict
    from nlp_ssl.finetuning import PadCollator, autocast_dtype, eval_device, is_main_process, precision_of, predict
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
        write_json_atomic(out / "metrics.json", results)
    return results
