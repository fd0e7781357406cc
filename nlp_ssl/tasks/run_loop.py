"""The one fine-tuning run loop, for every task of the registry (`tasks.registry`).

    setup  (the task's config checks, the model directory, the Trainer options, the output dir, the task's job:
            tokenizer, data, encoding)
    train  one run (output_dir is the model directory), or a learning-rate grid on the first seed scored on the
           selection split, then every seed at the best rate (`selection.run_grid`; each run a model directory
           `lr<rate>-seed<seed>/`); each run: training sample -> train (a learning curve on the selection split
           keeps the best weights and stops early, with train.eval_steps; mid-run checkpoints and resume, with
           train.save_steps) -> [the task's refinement, e.g. self-training rounds] -> score every evaluation split
    save   per run: the task's own files (predictions, ...), model, tokenizer, metrics.json, config.yaml and
           run_info.json (with the task's artifact), training logs, learning curve, plots, model card; for a grid
           the summary (mean and std over seeds) in output_dir/metrics.json.

A task plugs in through a `TaskJob`: load and encode its data, build its model, score a split, save its extras.

Example:
    >>> from nlp_ssl.cli import build_config
    >>> cfg, _ = build_config("finetune", {"output_dir": "runs/sst2", "model": "runs/mlm",
    ...                                     "task": {"preset": "sst2"}, "seed": [1, 2, 3]})  # doctest: +SKIP
    >>> finetune(cfg)["summary"]["dev"]["accuracy"]["mean"]                                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar

from nlp_ssl.config import to_dict
from nlp_ssl.hub import HubConfig
from nlp_ssl.layout import CHECKPOINTS_DIR, LEARNING_CURVE_FILE, METRICS_FILE, cell_name
from nlp_ssl.optimization import FinetuneTrainConfig, ImplConfig
from nlp_ssl.outputs import comparable_config
from nlp_ssl.runinfo import content_key
from nlp_ssl.selection import GridResult, aggregate
from nlp_ssl.tasks.models import Init


@dataclass
class FinetuneRunConfig:
    """What every task's config of `nlp-ssl finetune` has (each task's config adds its own keys and its `task`
    section, the dataclass its registry entry names).

    Attributes:
        output_dir: with one seed and one learning rate, the model directory itself; otherwise a directory of
            runs (`lr<rate>-seed<seed>/`, each a model directory) with the summary (mean and std over seeds) in
            metrics.json.
        model: the pretrained encoder: a directory (written by `nlp-ssl pretrain`), or a Hub id such as
            `bert-base-uncased` (downloaded once into the Hub cache), or any HF encoder saved with its tokenizer.
        tokenizer: the tokenizer directory, when the model directory has none.
        init: `pretrained` (the encoder's weights) or `scratch` (the same architecture, randomly initialised).
        task: the task (its `type` picks it in the registry, `nlp_ssl.tasks.registry`).
        max_train_samples: train on a seeded sample of this many examples (null: all).
        seed: the seed of the sample, head initialisation and data order; or a list of seeds: one run per
            seed, summary = mean and std over them (`--seeds 1,2,3` on the command line).
        train: see FinetuneTrainConfig; a list of learning rates is a grid scored on the task's selection split.
        impl: see ImplConfig (speed only).
        save_predictions: write each evaluation split's predictions into each run.
        overwrite: replace an output_dir that holds another run.
        hub: push the model when the run finishes (a grid of runs: the chosen rate's first seed); see HubConfig.
    """

    output_dir: str
    model: str
    tokenizer: str | None = None
    init: Init = "pretrained"
    task: Any = None
    max_train_samples: int | None = None
    seed: int | list[int] = 1
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    impl: ImplConfig = field(default_factory=ImplConfig)
    save_predictions: bool = True
    overwrite: bool = False
    hub: HubConfig = field(default_factory=HubConfig)

    # old spellings, refused with the new name (and migrated when an older run's config.yaml is read)
    RENAMED: ClassVar[dict[str, str]] = {"seeds": "seed"}

    @property
    def seeds(self) -> list[int]:
        """`seed` as a list (one seed, or several)."""
        return seeds_of(self)

    def validate(self) -> list[str]:
        return common_problems(self)


@dataclass(frozen=True)
class Roles:
    """Which split chooses and which reports, and what is chosen on (the grid's score, the curve's metric).

    Attributes:
        selection_split: scores the learning-rate grid and, with train.eval_steps, picks the best weights.
        report_split: the headline figure; nothing should be chosen on it.
        selection_metric: the grid's score on the selection split (the task's first metric).
        best_metric: the learning curve's metric (train.metric_for_best_model, else selection_metric).
        oracle: something is chosen on the reported split (a grid or a curve on it): figures are optimistic.
    """

    selection_split: str
    report_split: str
    selection_metric: str
    best_metric: str
    oracle: bool


@dataclass
class Evaluation:
    """What scoring every evaluation split gave: {split: metrics}, examples per second per split, and whatever
    the task keeps to save (`TaskJob.save`: predictions, a tuned threshold)."""

    evals: dict[str, dict[str, Any]]
    speed: dict[str, float]
    extras: Any = None


class TaskJob:
    """What a task plugs into the run loop; everything shared by the runs of one config (resolved task, tokenizer,
    encoded splits). Subclasses set the attributes in `__init__(cfg, data_dir)` and implement the methods that
    raise here.

    Attributes:
        cfg: the run's config; task: its resolved task section; tokenizer: the tokenizer the model is saved with.
        roles: see `Roles`.
        collator: training batches (dynamic padding); label_names: the batch keys that hold labels.
        dtype: autocast dtype of evaluation (as training).
    """

    cfg: Any
    task: Any
    tokenizer: Any
    roles: Roles
    collator: Any
    label_names: tuple[str, ...] | list[str] = ("labels",)
    dtype: Any = None

    @staticmethod
    def check(cfg: Any) -> None:
        """The task's config mistakes, raised as ConfigError before anything heavy is imported (none by default)."""

    def describe(self) -> str:
        """One line for the log: what is fine-tuned on which data."""
        raise NotImplementedError

    def train_set(self, seed: int):
        """The encoded training examples of the run with this seed (a seeded sample, or all)."""
        raise NotImplementedError

    def new_model(self, seed: int):
        """The task model (its Auto class's head on the encoder), head initialised from `seed`."""
        raise NotImplementedError

    def selection_scores(self, model, with_loss: bool = False) -> dict[str, float]:
        """Metrics of the selection split (the learning curve's points)."""
        raise NotImplementedError

    def evaluate(self, model) -> Evaluation:
        """Score every evaluation split."""
        raise NotImplementedError

    def run_metrics(self, seed: int, stats: dict[str, Any], train_set, evaluation: Evaluation) -> dict[str, Any]:
        """The task's own fields of a run's metrics.json (sizes of its training data, oracle flags, ...)."""
        return {"train_examples": len(train_set), **stats}

    def refine(self, model, stats: dict, train_set, evaluation: Evaluation, lr: float, seed: int, work: str,
               fit: Callable) -> tuple[Any, dict, Evaluation, dict[str, Any]]:
        """After the first training: more rounds (self-training), returning (model, stats, evaluation, fields for
        metrics.json). `fit(train_set)` trains a fresh model at this rate and seed. Default: nothing more."""
        return model, stats, evaluation, {}

    def save(self, out: Path, model, evaluation: Evaluation) -> None:
        """The task's own files of a run (predictions, submissions); called before the model is saved, so settings
        written into `model.config` are saved with it."""

    def run_info(self) -> dict[str, Any]:
        """Fields the task adds to run_info.json (class names, the resolved task)."""
        return {}

    def task_description(self) -> str:
        """What the model was fine-tuned for, in a few words (the model card's task line)."""
        return f"{self.cfg.task.type} ({getattr(self.task, 'preset', None) or 'custom'})"

    def headline(self, metrics: dict[str, Any]) -> str:
        """The reported split's figures of a run, for the log."""
        split = metrics["eval"][self.roles.report_split]
        note = " (oracle: chosen on this split)" if metrics.get("oracle") else ""
        return f"{self.roles.report_split} " + ", ".join(
            f"{k} {v:.4f}" for k, v in split.items() if isinstance(v, float)) + note

    def summary_extra(self, runs: list[dict[str, Any]]) -> dict[str, Any]:
        """Fields the task adds to a grid's summary (e.g. self-training rounds)."""
        return {}


def run_key(cfg: Any, lr: float, seed: int) -> str:
    """What identifies a run's result: the config (without where it is written) plus its rate and seed."""
    return content_key({"config": comparable_config(to_dict(replace(cfg, seed=[]))), "lr": lr, "seed": seed})


def seeds_of(cfg: Any) -> list[int]:
    """`seed` as a list (one seed, or several)."""
    return list(cfg.seed) if isinstance(cfg.seed, (list, tuple)) else [cfg.seed]


def chooses(cfg: Any) -> bool:
    """Whether the run chooses something on its selection split (a rate from a grid, the best weights of a curve)."""
    return len(cfg.train.learning_rate_grid) > 1 or bool(cfg.train.eval_steps)


def common_problems(cfg: Any) -> list[str]:
    """Config checks every task's finetune config shares (its `validate` adds them)."""
    problems = []
    seeds = seeds_of(cfg)
    if not seeds or len(set(seeds)) != len(seeds):
        problems.append(f"seed: one seed, or a list of distinct seeds, got {cfg.seed}")
    if cfg.train.resume and cfg.overwrite:  # overwrite would remove the checkpoints resume continues from
        problems.append("overwrite and train.resume: choose one")
    if cfg.max_train_samples is not None and cfg.max_train_samples < 1:
        problems.append("max_train_samples: must be positive (or null for all)")
    return problems


def fit(job: TaskJob, train_set, lr: float, seed: int, work: str, checkpoints: str | None = None,
        resume_from: str | None = None) -> tuple[Any, dict[str, Any], dict[str, Any] | None, Any]:
    """Train one model -> (model, training stats, learning curve record or None, trainer). `checkpoints`: the folder
    of its mid-run checkpoints (train.save_steps); `resume_from`: the complete checkpoint to continue from."""
    from nlp_ssl.optimization import training_arguments
    from nlp_ssl.tasks.train import selection_early_stopping, train

    tc, roles = job.cfg.train, job.roles
    model = job.new_model(seed)
    args = training_arguments(checkpoints or work, tc, job.cfg.impl, seed=seed, learning_rate=lr,
                              checkpoints=checkpoints is not None,
                              label_names=list(job.label_names))
    curve = None
    if tc.eval_steps:  # a learning curve on the selection split, best weights kept, optional early stop
        metric = roles.best_metric
        curve = selection_early_stopping(lambda m: job.selection_scores(m, with_loss=metric == "loss"), metric,
                                         tc.eval_steps, tc.early_stopping_patience, tc.best_is_greater(),
                                         tc.load_best_model_at_end)
    trainer, stats = train(model, args, train_set, job.collator, job.tokenizer, tc.layer_lr_decay,
                           (curve,) if curve else (), checkpoint=resume_from)
    record = None if curve is None else {
        "split": roles.selection_split, "metric": roles.best_metric, "best_step": curve.best_step, "best": curve.best,
        "greater_is_better": tc.best_is_greater(),
        "stopped_early": curve.stopped and stats["steps"] < trainer.state.max_steps, "points": curve.curve}
    return trainer.model, stats, record, trainer


def run_facts(job: TaskJob) -> dict[str, Any]:
    """What run_info.json records of a fine-tuned model besides the run itself: the task's own fields, the artifact
    its registry entry declares (Auto class, pipeline tag, one line: the card's "How to load"), the task's metric
    names and a few words on the task (the card's task line), so a card never asks which task it is."""
    from nlp_ssl.tasks.registry import task_spec

    spec = task_spec(getattr(job.task, "type", None) or job.cfg.task.type)  # resolved: a preset may set the type
    return {**job.run_info(), "artifact": spec.artifact.to_dict(), "task_type": spec.name,
            "metric_names": spec.metric_names(to_dict(job.task)), "task_description": job.task_description()}


def run_one(job: TaskJob, lr: float, seed: int, run_dir: Path, checkpoints: Path | None = None) -> dict[str, Any]:
    """Train (and refine), score and save one run into `run_dir` (written atomically). With train.save_steps,
    mid-run checkpoints go to `checkpoints` (kept across an interruption; with train.resume the run continues from
    the latest complete one) and are removed once the run is saved."""
    from nlp_ssl.atomic import scratch_dir
    from nlp_ssl.hub import write_model_card
    from nlp_ssl.outputs import keep_training_logs, main_process_output, save_model_dir
    from nlp_ssl.plots import plot_run
    from nlp_ssl.runinfo import RunClock, write_run_info
    from nlp_ssl.tasks.train import checkpoint_to_resume

    cfg, roles = job.cfg, job.roles
    clock = RunClock()  # the run's provenance (commit, versions, machine, load at start and end)
    labelled = job.train_set(seed)
    checkpoints = checkpoints if cfg.train.save_steps else None
    resume_from = checkpoint_to_resume(checkpoints, cfg.train.resume) if checkpoints else None
    with main_process_output(run_dir) as tmp, scratch_dir(run_dir) as work:
        model, stats, curve, trainer = fit(job, labelled, lr, seed, str(work), str(checkpoints) if checkpoints else None,
                                           resume_from)
        logs_dir, log_history = trainer.args.output_dir, trainer.state.log_history
        evaluation = job.evaluate(model)

        def refit(train_set):  # a later round (self-training): its logs and curve are the run's
            nonlocal logs_dir, log_history, curve
            m, s, curve, t = fit(job, train_set, lr, seed, str(work))
            logs_dir, log_history = t.args.output_dir, t.state.log_history
            return m, s

        model, stats, evaluation, refined = job.refine(model, stats, labelled, evaluation, lr, seed, str(work), refit)
        metrics = {"learning_rate": lr, "seed": seed, "init": cfg.init, **job.run_metrics(seed, stats, labelled, evaluation),
                   "eval": evaluation.evals, "eval_examples_per_second": evaluation.speed,
                   "selection_split": roles.selection_split, "report_split": roles.report_split,
                   "oracle": roles.oracle, "run_key": run_key(cfg, lr, seed), "provenance": clock.provenance()}
        if curve:  # the step whose weights were kept (load_best_model_at_end) and why training ended
            metrics.update(best_step=curve["best_step"], stopped_early=curve["stopped_early"])
        metrics.update(refined)
        # this run's rate and seed, written as the config gave them (a value, or a list of one)
        as_given = lambda given, v: [v] if isinstance(given, list) else v  # noqa: E731
        run_cfg = replace(cfg, output_dir=str(run_dir), seed=as_given(cfg.seed, seed),
                          train=replace(cfg.train, learning_rate=as_given(cfg.train.learning_rate, lr)))
        write_run_info(tmp, run_cfg, "finetune", run_facts(job))
        job.save(tmp, model, evaluation)
        save_model_dir(tmp, model, job.tokenizer, metrics)
        keep_training_logs(logs_dir, tmp, log_history)
        if curve:
            (tmp / LEARNING_CURVE_FILE).write_text(json.dumps(curve, indent=1) + "\n")
        plot_run(tmp)
        write_model_card(tmp)
    if checkpoints is not None:  # the run is saved: its checkpoints are spent (inside run_dir: already gone)
        shutil.rmtree(checkpoints, ignore_errors=True)
    return metrics


def grid_summary(cfg: Any, roles: Roles, result: GridResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary of a grid-and-seeds run (metrics.json of output_dir): mean and sample std over seeds of every
    split's metrics, the grid's selection scores; printed as it is built."""
    runs, best, seeds = result.runs, result.best_learning_rate, seeds_of(cfg)
    summary = {
        "task": getattr(cfg.task, "preset", None), "type": cfg.task.type, "init": cfg.init, "model": cfg.model,
        "max_train_samples": cfg.max_train_samples, "seeds": seeds,
        "selection": {"split": roles.selection_split, "metric": roles.selection_metric,
                      "grid": {f"{lr:g}": s for lr, s in result.scores.items()},
                      "best_learning_rate": best, "oracle": roles.oracle},
        "report_split": roles.report_split, "summary": aggregate(runs),
        "runs": [{k: r[k] for k in ("seed", "learning_rate", "eval", "train_seconds", "train_examples_per_second",
                                    "train_features_per_second", "self_training") if k in r} for r in runs],
        **(extra or {}),
    }
    for split, ms in summary["summary"].items():
        role = {roles.selection_split: "selection", roles.report_split: "reported"}.get(split, "")
        if split == roles.report_split and roles.oracle:
            role = "reported, oracle: the learning rate was chosen on this split"
        print(f"{split}: " + ", ".join(f"{m} {v['mean']:.4f} ± {v['std']:.4f}" for m, v in ms.items())
              + f" (lr {best:g}, seeds {seeds}{'; ' + role if role else ''})")
    return summary


def finetune(cfg: Any, data_dir: str | None = None) -> dict[str, Any]:
    """Fine-tune for the task `cfg.task.type` names; returns the metrics (also in output_dir/metrics.json)."""
    from nlp_ssl.atomic import write_marker
    from nlp_ssl.distributed import is_main_process
    from nlp_ssl.hub import share, write_model_card
    from nlp_ssl.optimization import apply_impl, check_trainer_options
    from nlp_ssl.outputs import check_output_dir, clear_for_start, read_metrics, write_json_atomic
    from nlp_ssl.plots import plot_run
    from nlp_ssl.runinfo import RunClock, write_run_info
    from nlp_ssl.selection import grid_extension, reusable_run, run_grid
    from nlp_ssl.tasks.models import check_model_dir
    from nlp_ssl.tasks.registry import task_spec

    # --- setup ---------------------------------------------------------------------------------------
    spec = task_spec(cfg.task.type)
    job_class = spec.job_class()
    job_class.check(cfg)  # the task's config mistakes and a model that is not there answer at once (no torch
    check_model_dir(cfg.model, cfg.tokenizer)  # import); then what the Trainer would refuse, then the output dir
    check_trainer_options(cfg.train, cfg.impl)
    apply_impl(cfg.impl)  # torch's CPU threads (impl.num_threads), as pretraining
    clock = RunClock()  # load average at the start, for the summary's provenance
    out = Path(cfg.output_dir)
    if check_output_dir(cfg) == "done":
        print(f"{out} already holds this run, finished (same config); nothing to do")
        return read_metrics(out)
    from nlp_ssl.tasks.train import refuse_unresumed

    refuse_unresumed(out / CHECKPOINTS_DIR, cfg.train.resume or cfg.overwrite)  # overwrite: removed below
    job = job_class(cfg, data_dir)
    lrs, seeds, roles = cfg.train.learning_rate_grid, seeds_of(cfg), job.roles
    print(job.describe())
    clear_for_start(out, cfg.overwrite)
    info = run_facts(job)

    # --- train, validate, save: one run (output_dir is the model directory) ---------------------------
    if len(lrs) == 1 and len(seeds) == 1:
        if cfg.train.save_steps and is_main_process():  # checkpoints in output_dir: recognised as this run's
            write_run_info(out, cfg, "finetune", info)
        metrics = run_one(job, lrs[0], seeds[0], out, out / CHECKPOINTS_DIR)
        print(f"saved to {out}: {job.headline(metrics)}")
        if is_main_process() and cfg.hub.push:
            share(out, cfg.hub)
        return metrics

    # --- or a grid on the first seed, then every seed at the best rate --------------------------------
    if is_main_process():
        write_run_info(out, cfg, "finetune", info)
    sel, metric = roles.selection_split, roles.selection_metric

    def run(lr: float, seed: int) -> dict[str, Any]:
        run_dir = out / cell_name(lr, seed)
        metrics = reusable_run(run_dir, run_key(cfg, lr, seed)) or run_one(job, lr, seed, run_dir,
                                                                           out / CHECKPOINTS_DIR / run_dir.name)
        report = "" if roles.report_split == sel else f"; {job.headline(metrics)}"
        print(f"lr {lr:g} seed {seed}: {sel} {metric} {metrics['eval'][sel][metric]:.4f}{report}", flush=True)
        return metrics

    result = run_grid(lrs, seeds, run, score=lambda m: m["eval"][sel][metric],
                      extend=grid_extension if cfg.train.extend_lr_grid else None)
    summary = grid_summary(cfg, roles, result, job.summary_extra(result.runs))
    summary["provenance"] = clock.provenance()
    if is_main_process():
        shutil.rmtree(out / CHECKPOINTS_DIR, ignore_errors=True)  # every run is saved
        write_json_atomic(out / METRICS_FILE, summary)
        plot_run(out)
        for r in result.runs:  # their cards now carry the mean and std over seeds
            run_dir = out / cell_name(r["learning_rate"], r["seed"])
            write_model_card(run_dir)
            write_marker(run_dir)  # the card changed size: the run's completeness marker must list the new one
        if cfg.hub.push:
            share(out / cell_name(result.best_learning_rate, seeds[0]), cfg.hub)
    return summary
