"""`nlp-ssl finetune CONFIG` (or `accelerate launch scripts/finetune_classification.py CONFIG`): fine-tune a
pretrained encoder (or the same architecture from scratch) for text classification or regression.

setup (task, splits, tokenizer, output dir) -> plan (a learning-rate grid on the first seed, then every seed at
the best rate) -> per run: few-label sample -> train -> [self-training rounds] -> score every evaluation split
-> save a model directory -> summary (mean and standard deviation over seeds).

A config whose `task.type` is `extractive_qa` runs the question-answering recipe (`recipes/finetune_qa.py`).
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nlp_ssl.config import from_dict, read_yaml, to_dict
from nlp_ssl.data.sources import DataSourceConfig, column
from nlp_ssl.errors import DataError, OutputError
from nlp_ssl.finetuning import FinetuneTrainConfig, Init
from nlp_ssl.hub import HubConfig
from nlp_ssl.runinfo import content_key, write_run_info
from nlp_ssl.tasks.classification import TaskConfig

METRICS_FILE = "metrics.json"


@dataclass
class SelfTrainingConfig:
    """Self-training: label an unlabelled pool with the current model, keep confident class-balanced
    predictions, retrain on labelled + pseudo-labelled examples; repeat.

    Attributes:
        rounds: rounds after the supervised one (0: off).
        unlabeled: the pool's source (its `text_column` is read; `max_examples` bounds its size).
        threshold: minimum top-class probability for a pseudo-label.
        max_per_class: cap on pseudo-labels per class per round (null: no cap).
    """

    rounds: int = 0
    unlabeled: DataSourceConfig | None = None
    threshold: float = 0.9
    max_per_class: int | None = None

    def validate(self) -> list[str]:
        problems = []
        if self.rounds < 0:
            problems.append("rounds: must be 0 or more")
        if self.rounds and self.unlabeled is None:
            problems.append("unlabeled: self-training needs an unlabelled source")
        if not 0 < self.threshold < 1:
            problems.append(f"threshold: a probability in (0, 1), got {self.threshold}")
        return problems


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
        pooling: what the classification head reads: `cls` (the first token) or `mean` (the mean of the token
            states; ModernBERT encoders, whose saved head records it, see `finetuning.classifier_pooling`).
        task: see TaskConfig.
        max_train_samples: train on a seeded, class-stratified sample of this many examples (null: all).
        seeds: one run per seed (sample, head initialisation, data order); summary = mean and std over them.
        train: see FinetuneTrainConfig.
        self_training: see SelfTrainingConfig.
        save_predictions: write predictions-<split>.jsonl (one row per example) into each run.
        overwrite: replace an output_dir that holds another run.
        hub: push the model when the run finishes (a grid of runs: the chosen rate's first seed); see HubConfig.
    """

    output_dir: str
    model: str
    tokenizer: str | None = None
    init: Init = "pretrained"
    pooling: Literal["cls", "mean"] = "cls"
    task: TaskConfig = field(default_factory=TaskConfig)
    max_train_samples: int | None = None
    seeds: list[int] = field(default_factory=lambda: [1])
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    self_training: SelfTrainingConfig = field(default_factory=SelfTrainingConfig)
    save_predictions: bool = True
    overwrite: bool = False
    hub: HubConfig = field(default_factory=HubConfig)

    def validate(self) -> list[str]:
        problems = []
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            problems.append(f"seeds: one or more distinct seeds, got {self.seeds}")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            problems.append("max_train_samples: must be positive (or null for all)")
        if self.self_training.rounds and self.task.type == "regression":
            problems.append("self_training.rounds: self-training needs class predictions; not for regression")
        return problems


def select_config_class(data: dict) -> type:
    """The config class for a raw `finetune` config: extractive QA or classification/regression."""
    task = data.get("task") if isinstance(data, dict) else None
    if isinstance(task, dict) and task.get("type") == "extractive_qa":
        from nlp_ssl.recipes.finetune_qa import QAFinetuneConfig

        return QAFinetuneConfig
    return FinetuneConfig


# ----------------------------------------------------------------------------------------------------------
# Output directory


def _comparable(cfg: Any) -> dict:
    d = to_dict(cfg)
    d.pop("output_dir", None)
    d.pop("overwrite", None)
    d.pop("hub", None)  # where the model is shared does not change it
    return d


def check_output_dir(cfg: Any) -> str:
    """`start`, `resume` (same config, unfinished runs left) or `done` (same config, finished)."""
    from nlp_ssl.atomic import check_output_target, refuse_input_overlap

    out = Path(cfg.output_dir)
    refuse_input_overlap(out, {"model": cfg.model, "tokenizer": cfg.tokenizer})
    check_output_target(out, "finetune", cfg.overwrite)
    if not out.exists() or not any(out.iterdir()) or cfg.overwrite:
        return "start"
    saved = out / "config.yaml"
    if saved.exists() and _comparable(from_dict(type(cfg), read_yaml(saved), str(saved))) == _comparable(cfg):
        return "done" if (out / METRICS_FILE).exists() else "resume"
    raise OutputError(f"{out} already holds another run; set overwrite=true to replace it, or choose another output_dir")


def write_json_atomic(path: Path, data: Any) -> None:
    from nlp_ssl.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, default=float) + "\n")


def aggregate(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """{split: {metric: {mean, std, n}}} over runs (std: sample standard deviation; 0 for one run)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split in runs[0]["eval"]:
        out[split] = {}
        for metric in runs[0]["eval"][split]:
            values = [r["eval"][split][metric] for r in runs]
            out[split][metric] = {"mean": statistics.fmean(values),
                                  "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}
    return out


# ----------------------------------------------------------------------------------------------------------
# One run


class _Job:
    """Everything shared by the runs of one config: resolved task, tokenizer, encoded splits."""

    def __init__(self, cfg: FinetuneConfig, data_dir: str | None):
        from nlp_ssl.finetuning import check_fits, check_model_dir
        from nlp_ssl.tasks.classification import encode, load_task, resolve_task

        self.cfg = cfg
        self.task = resolve_task(cfg.task)  # config mistakes first, before any heavy import
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
        self.pool = None
        if cfg.self_training.rounds:
            self.pool = self._load_pool(data_dir)

    def _load_pool(self, data_dir):
        from datasets import Dataset

        from nlp_ssl.data.sources import load_source
        from nlp_ssl.tasks.classification import encode

        src = self.cfg.self_training.unlabeled
        raw = load_source(src, data_dir, [src.text_column])
        texts = [t for t in column(raw, src.text_column) if isinstance(t, str) and t.strip()]
        if not texts:
            raise DataError(f"self_training.unlabeled: column {src.text_column!r} holds no text")
        pool = Dataset.from_dict({"text_a": texts, "label": [0] * len(texts), "idx": list(range(len(texts)))})
        return encode(pool, self.tokenizer, self.task)

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

    def fit(self, train_set, lr: float, seed: int, work: str):
        from nlp_ssl.finetuning import PadCollator, train, training_arguments

        model = self.new_model(seed)
        args = training_arguments(work, self.cfg.train, lr, seed)
        curve, sel, metric = None, self.task.selection_split, self.task.metrics[0]
        if self.cfg.train.eval_steps:  # dev curve on the selection split, best weights kept (as for QA)
            from nlp_ssl.finetuning import selection_early_stopping

            curve = selection_early_stopping(lambda m: self.score(m, sel)[0], metric, self.cfg.train.eval_steps,
                                             self.cfg.train.early_stopping_patience)
        trainer, stats = train(model, args, train_set, PadCollator(self.tokenizer), self.tokenizer,
                               self.cfg.train.layer_lr_decay, (curve,) if curve else ())
        self.log_history = trainer.state.log_history
        self.curve = None if curve is None else {"split": sel, "metric": metric, "best_step": curve.best_step,
                                                 "best": curve.best, "points": curve.curve}
        return trainer.model, stats

    def score(self, model, split: str) -> tuple[dict[str, float], list[dict], float]:
        from nlp_ssl.finetuning import PadCollator, predict
        from nlp_ssl.tasks.classification import score_predictions

        ds = self.encoded[split]
        out, seconds = predict(model, ds, PadCollator(self.tokenizer), self.cfg.train.eval_batch_size)
        metrics, rows = score_predictions(out["logits"], np.asarray(column(ds, "labels")), self.task, self.labels,
                                          np.asarray(column(ds, "idx")))
        return metrics, rows, seconds

    def evaluate_all(self, model) -> tuple[dict, dict, dict]:
        evals, rows, speed = {}, {}, {}
        for split in self.encoded:
            if split == "train":
                continue
            evals[split], rows[split], seconds = self.score(model, split)
            speed[split] = len(rows[split]) / seconds if seconds else float("nan")
        return evals, rows, speed

    def pseudo_label(self, model, round_: int):
        """The pool examples the model labels confidently (class-balanced), as a training set."""
        from nlp_ssl.finetuning import PadCollator, predict
        from nlp_ssl.tasks.classification import select_pseudo_labels, softmax

        st = self.cfg.self_training
        out, _ = predict(model, self.pool, PadCollator(self.tokenizer), self.cfg.train.eval_batch_size)
        chosen, pseudo = select_pseudo_labels(softmax(out["logits"]), st.threshold, st.max_per_class)
        selected = self.pool.select(chosen)
        selected = selected.remove_columns("labels").add_column("labels", [int(p) for p in pseudo])
        return selected, {"round": round_, "pseudo_labels": int(len(chosen)),
                          "per_class": {self.labels[c]: int((pseudo == c).sum()) for c in range(len(self.labels))}}

    def run(self, lr: float, seed: int, run_dir: Path) -> dict[str, Any]:
        """Train (and self-train), score, and save one run into `run_dir` (written atomically)."""
        from datasets import concatenate_datasets

        from nlp_ssl.atomic import scratch_dir
        from nlp_ssl.finetuning import keep_training_logs, main_process_output, save_model_dir
        from nlp_ssl.hub import write_model_card
        from nlp_ssl.plots import plot_run

        cfg = self.cfg
        labelled = self.train_sample(seed)
        with main_process_output(run_dir) as tmp, scratch_dir(run_dir) as work:
            model, stats = self.fit(labelled, lr, seed, work)
            evals, rows, speed = self.evaluate_all(model)
            rounds = [{"round": 0, "train_examples": len(labelled), "eval": evals}]
            for r in range(1, cfg.self_training.rounds + 1):
                pseudo, info = self.pseudo_label(model, r)
                train_r = concatenate_datasets([labelled, pseudo.cast(labelled.features)]) if len(pseudo) else labelled
                model, stats = self.fit(train_r, lr, seed, work)
                evals, rows, speed = self.evaluate_all(model)
                rounds.append({**info, "train_examples": len(train_r), "eval": evals})
                print(f"  self-training round {r}: {info['pseudo_labels']} pseudo-labels, "
                      f"{self.task.report_split} {self.task.metrics[0]} {evals[self.task.report_split][self.task.metrics[0]]:.4f}")
            metrics = {"learning_rate": lr, "seed": seed, "init": cfg.init, "train_examples": len(labelled),
                       **stats, "eval": evals, "eval_examples_per_second": speed,
                       "run_key": run_key(cfg, lr, seed)}
            if cfg.self_training.rounds:
                metrics["self_training"] = rounds
            run_cfg = replace(cfg, output_dir=str(run_dir), seeds=[seed],
                              train=replace(cfg.train, learning_rates=[lr]))
            write_run_info(tmp, run_cfg, "finetune", {"labels": self.labels})
            save_model_dir(tmp, model, self.tokenizer, metrics)
            keep_training_logs(work, tmp, self.log_history)
            if self.curve:
                (tmp / "learning_curve.json").write_text(json.dumps(self.curve, indent=1) + "\n")
            plot_run(tmp)
            write_model_card(tmp)
            if cfg.save_predictions:
                for split, split_rows in rows.items():
                    with open(tmp / f"predictions-{split}.jsonl", "w", encoding="utf-8") as f:
                        for row in split_rows:
                            f.write(json.dumps(row) + "\n")
        return metrics


def run_key(cfg: FinetuneConfig, lr: float, seed: int) -> str:
    """What identifies a run's result: the config (without where it is written) plus its rate and seed."""
    return content_key({"config": _comparable(replace(cfg, seeds=[])), "lr": lr, "seed": seed})


def _reusable(run_dir: Path, key: str) -> dict[str, Any] | None:
    """A finished run's metrics when `run_dir` holds the same run (resuming a grid after an interruption)."""
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("run_key") == key else None


def _headline(metrics: dict, task: TaskConfig) -> str:
    split = metrics["eval"][task.report_split]
    return ", ".join(f"{m} {split[m]:.4f}" for m in task.metrics)


def main(cfg: FinetuneConfig, data_dir: str | None = None) -> dict[str, Any]:
    """Fine-tune and return the metrics (also written to output_dir/metrics.json)."""
    if not isinstance(cfg, FinetuneConfig):  # an extractive-QA config (see select_config_class)
        from nlp_ssl.recipes.finetune_qa import main as finetune_qa

        return finetune_qa(cfg, data_dir)
    out = Path(cfg.output_dir)
    action = check_output_dir(cfg)
    if action == "done":
        print(f"{out} already holds this run, finished (same config); nothing to do")
        return json.loads((out / METRICS_FILE).read_text())
    job = _Job(cfg, data_dir)
    task, lrs, seeds = job.task, cfg.train.learning_rates, cfg.seeds
    print(f"fine-tuning {cfg.model} ({cfg.init}) on {task.preset or 'task'}: "
          + ", ".join(f"{k} {len(v):,}" for k, v in job.encoded.items())
          + (f"; {cfg.max_train_samples} training examples per seed" if cfg.max_train_samples else ""))
    from nlp_ssl.finetuning import is_main_process, wait_for_everyone
    from nlp_ssl.hub import share, write_model_card
    from nlp_ssl.plots import plot_run

    main_rank = is_main_process()
    if cfg.overwrite and out.exists() and main_rank:
        shutil.rmtree(out)
    wait_for_everyone()

    if len(lrs) == 1 and len(seeds) == 1:  # a single run: output_dir is the model directory
        metrics = job.run(lrs[0], seeds[0], out)
        print(f"saved to {out}: {task.report_split} {_headline(metrics, task)}")
        if main_rank and cfg.hub.push:
            share(out, cfg.hub)
        return metrics

    if main_rank:
        write_run_info(out, cfg, "finetune", {"labels": job.labels})
    main_metric, sel = task.metrics[0], task.selection_split

    def run(lr, seed):
        run_dir = out / f"lr{lr:g}-seed{seed}"
        metrics = _reusable(run_dir, run_key(cfg, lr, seed)) or job.run(lr, seed, run_dir)
        report = "" if task.report_split == sel else f"; {task.report_split} {_headline(metrics, task)}"
        print(f"lr {lr:g} seed {seed}: {sel} {main_metric} {metrics['eval'][sel][main_metric]:.4f}{report}", flush=True)
        return metrics

    grid = {lr: run(lr, seeds[0]) for lr in lrs}
    scores = {lr: m["eval"][sel][main_metric] for lr, m in grid.items()}
    if cfg.train.extend_lr_grid:
        from nlp_ssl.finetuning import grid_extension

        extra = grid_extension(scores)
        if extra is not None:  # the best rate sits at an edge: one step further
            print(f"best rate {max(scores, key=scores.get):g} is at the grid's edge; also trying {extra:g}")
            grid[extra] = run(extra, seeds[0])
            scores[extra] = grid[extra]["eval"][sel][main_metric]
    best = max(scores, key=lambda lr: -math.inf if math.isnan(scores[lr]) else scores[lr])
    runs = [grid[best]] + [run(best, s) for s in seeds[1:]]
    summary = {
        "task": task.preset, "init": cfg.init, "model": cfg.model, "max_train_samples": cfg.max_train_samples,
        "seeds": seeds, "selection": {"split": sel, "metric": main_metric, "grid": {f"{lr:g}": s for lr, s in scores.items()},
                                      "best_learning_rate": best},
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
    if main_rank:
        write_json_atomic(out / METRICS_FILE, summary)
        plot_run(out)
        for r in runs:  # their cards now carry the mean and std over seeds
            write_model_card(out / f"lr{r['learning_rate']:g}-seed{r['seed']}")
        if cfg.hub.push:
            share(out / f"lr{best:g}-seed{seeds[0]}", cfg.hub)
    for split, ms in summary["summary"].items():
        print(f"{split}: " + ", ".join(f"{m} {v['mean']:.4f} ± {v['std']:.4f}" for m, v in ms.items())
              + f" (lr {best:g}, seeds {seeds})")
    return summary

