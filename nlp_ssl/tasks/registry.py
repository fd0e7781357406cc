"""The fine-tuning task registry: `task.type` names a task, and the task owns everything that differs between
tasks (its config, how it encodes data, its model head, its metrics, evaluation and prediction, what its saved
model is, how `report` summarises it).

Nothing else branches on the task: `nlp-ssl finetune` picks the config class here (`spec_for_config`), the one run
loop (`tasks.run_loop`) drives the task's job (a `tasks.run_loop.TaskJob`), `evaluate` and `predict` ask the spec of
a saved model (`spec_for_model`), the model card reads the artifact the run recorded, and `report` reads the
spec's `ReportSection`. Tasks are registered by module path and imported only when used, so loading a config stays
free of torch.

    type            config (task section)                        job                            head
    classification  classification_finetune.FinetuneConfig      ClassificationJob              AutoModelForSequenceClassification
    regression      (the same; task.type: regression)            ClassificationJob              AutoModelForSequenceClassification
    extractive_qa   qa_finetune.QAFinetuneConfig                 QAJob                          AutoModelForQuestionAnswering
    sts_zero_shot   (evaluate only: embeddings of any encoder)   -                              AutoModel

A new task is a module with its config, its job and one call (from its own file, no other module touched):

    register_task(TaskSpec(name="token_count", config="my_task:ToyConfig", job="my_task:ToyJob",
                           artifact=Artifact("AutoModelForSequenceClassification", "text-classification",
                                             "counts tokens"), metrics=("mse",), evaluate="my_task:evaluate",
                           report=ReportSection("regression", pct=False)))

Example:
    >>> spec_for_config({"task": {"type": "extractive_qa"}}).artifact.pipeline_tag
    'question-answering'
    >>> task_spec("regression").report.pct
    False
"""

from __future__ import annotations

import difflib
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nlp_ssl.artifact import Artifact
from nlp_ssl.errors import ConfigError
from nlp_ssl.layout import CONFIG_FILE

DEFAULT_TASK = "classification"  # a finetune config without task.type


@dataclass(frozen=True)
class ReportSection:
    """How `nlp-ssl report` summarises runs of a task.

    Attributes:
        kind: the table a run goes into (runs of one kind, task and metric are compared with each other);
            `classification`, `regression` and `qa` have their own layouts, any other kind the generic one.
        pct: print scores as percentages (scores in [0, 1]); False for scores already in points (SQuAD) or
            unbounded ones (correlations, errors).
        metric: the headline metric of a grid's runs (null: the metric the grid was selected on).
        bootstrap: whether the report resamples a run's per-example predictions (predictions-<split>.jsonl: rows
            with `prediction` and `label`, or for QA `prediction` and `answers`) for confidence intervals.
    """

    kind: str
    pct: bool = True
    metric: str | None = None
    bootstrap: bool = True


@dataclass(frozen=True)
class TaskSpec:
    """What a fine-tuning task declares.

    Attributes:
        name: the `task.type` value that selects it.
        config: "module:Class" of the config of `nlp-ssl finetune` for this task (its `task` section is the
            task's own dataclass); None for an evaluate-only task.
        job: "module:Class" of the task's `TaskJob` (loads and encodes the data, builds the model with its head,
            scores a split, saves its own files); imported only when a run starts.
        artifact: what the fine-tuned model directory is (Auto class of its head, pipeline tag, one line), recorded
            in run_info.json for the model card.
        metrics: the metric names the task reports (the card's `metrics`); a callable of the task section (a dict)
            when they depend on it (classification: task.metrics, QA: the SQuAD version).
        evaluate: "module:function" scoring a saved model: f(model_dir, task_dict, splits, batch_size, output_dir,
            data_dir, max_eval_samples) -> metrics.
        predict: "module:function" writing predictions for an unlabelled file (`nlp-ssl predict`), or None.
        predict_instead: with predict None, what to use instead (the error `nlp-ssl predict` gives).
        report: how `report` summarises its runs.
        heads: the architecture suffixes of a saved model of this task (`ForQuestionAnswering`), used to recognise
            a model directory that records no task.
    """

    name: str
    config: str | None
    job: str | None
    artifact: Artifact
    metrics: tuple[str, ...] | Callable[[dict], list[str]] = ()
    evaluate: str | None = None
    predict: str | None = None
    predict_instead: str = ""
    report: ReportSection = field(default_factory=lambda: ReportSection("classification"))
    heads: tuple[str, ...] = ()

    def metric_names(self, task: dict | None = None) -> list[str]:
        """The metric names of this task for a task section (`task` of a saved config.yaml)."""
        return list(self.metrics(task or {}) if callable(self.metrics) else self.metrics)

    def config_class(self) -> type:
        if self.config is None:
            raise ConfigError([f"task.type: {self.name} is for `nlp-ssl evaluate` only; it has nothing to fine-tune"])
        return load(self.config)

    def job_class(self) -> type:
        return load(self.job or "")

    def evaluate_fn(self) -> Callable[..., dict[str, Any]]:
        return load(self.evaluate or "")


def load(path: str) -> Any:
    """The object at "module:name" (imported now)."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ConfigError([f"task registry: {path!r} is not a 'module:name' path (a task without a job or an "
                           "evaluate function cannot do this)"])
    return getattr(importlib.import_module(module), name)


def _classification_metrics(task: dict) -> list[str]:
    if task.get("metrics"):
        return list(task["metrics"])
    if task.get("preset"):
        from nlp_ssl.tasks.classification import PRESETS

        preset = PRESETS.get(task["preset"])
        if preset is not None and preset.metrics:
            return list(preset.metrics)
    return ["pearson", "spearmanr"] if task.get("type") == "regression" else ["accuracy"]


def _qa_metrics(task: dict) -> list[str]:
    version = task.get("version") or ("v2" if task.get("preset") == "squad_v2" else "v1")
    return ["exact_match", "f1"] if version == "v1" else ["exact", "f1", "HasAns_f1", "NoAns_f1"]


TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec, replace: bool = False) -> TaskSpec:
    """Add a task (from any module: a plug-in registers itself when imported). Returns the spec.

    Raises:
        ValueError: another task already has this name (replace=True to redefine it on purpose).
    """
    if spec.name in TASKS and not replace and TASKS[spec.name] != spec:
        raise ValueError(f"task {spec.name!r} is already registered ({TASKS[spec.name].config}); choose another name")
    TASKS[spec.name] = spec
    return spec


_SEQ = Artifact("AutoModelForSequenceClassification", "text-classification",
                "a sequence classifier fine-tuned by nlp-ssl")
register_task(TaskSpec(
    name="classification", config="nlp_ssl.tasks.classification_finetune:FinetuneConfig",
    job="nlp_ssl.tasks.classification_finetune:ClassificationJob", artifact=_SEQ, metrics=_classification_metrics,
    evaluate="nlp_ssl.tasks.classification_finetune:evaluate_classifier",
    predict="nlp_ssl.tasks.prediction:predict_file", report=ReportSection("classification", pct=True),
    heads=("ForSequenceClassification",)))
register_task(TaskSpec(
    name="regression", config="nlp_ssl.tasks.classification_finetune:FinetuneConfig",
    job="nlp_ssl.tasks.classification_finetune:ClassificationJob",
    artifact=Artifact("AutoModelForSequenceClassification", "text-classification",
                      "a regression model (one score per text or pair) fine-tuned by nlp-ssl"),
    metrics=_classification_metrics, evaluate="nlp_ssl.tasks.classification_finetune:evaluate_classifier",
    predict="nlp_ssl.tasks.prediction:predict_file", report=ReportSection("regression", pct=False)))
register_task(TaskSpec(
    name="extractive_qa", config="nlp_ssl.tasks.qa_finetune:QAFinetuneConfig", job="nlp_ssl.tasks.qa_finetune:QAJob",
    artifact=Artifact("AutoModelForQuestionAnswering", "question-answering",
                      "an extractive question-answering model fine-tuned by nlp-ssl"),
    metrics=_qa_metrics, evaluate="nlp_ssl.tasks.qa_finetune:evaluate_qa_model",
    predict_instead="use `nlp-ssl answer MODEL --file QUESTIONS.json` for extractive QA",
    report=ReportSection("qa", pct=False, metric="f1"),
    heads=("ForQuestionAnswering",)))
register_task(TaskSpec(
    name="sts_zero_shot", config=None, job=None,
    artifact=Artifact("AutoModel", "feature-extraction", "a sentence encoder"), metrics=("pearson", "spearmanr"),
    evaluate="nlp_ssl.tasks.sts:evaluate_sts", predict_instead="sts_zero_shot scores sentence pairs; use `nlp-ssl "
    "evaluate MODEL task.type=sts_zero_shot`", report=ReportSection("regression", pct=False)))


ENTRY_POINTS = "nlp_ssl.tasks"  # the entry-point group of installed task plug-ins


def load_plugins() -> list[str]:
    """Import the task plug-ins installed as entry points (group `nlp_ssl.tasks`; each names a module that calls
    `register_task` when imported), so `nlp-ssl finetune` in a fresh process knows their tasks. A plug-in package
    declares, in its pyproject.toml: `[project.entry-points."nlp_ssl.tasks"] my_task = "my_package.my_task"`.
    Returns the names of the entry points loaded."""
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=ENTRY_POINTS):
        try:
            ep.load()
        except Exception as e:  # a broken plug-in must not hide the built-in tasks; say which and why
            raise ConfigError([f"task plug-in {ep.name!r} ({ep.value}, entry point group {ENTRY_POINTS}) failed to "
                               f"import: {type(e).__name__}: {e}"]) from None
        loaded.append(ep.name)
    return loaded


def task_spec(name: str | None) -> TaskSpec:
    """The spec of `task.type` (null: classification); tasks not registered yet are looked for among the installed
    plug-ins (`load_plugins`).

    Raises:
        ConfigError: no such task, with the closest registered name.
    """
    name = name or DEFAULT_TASK
    if name not in TASKS:
        load_plugins()
    if name not in TASKS:
        close = difflib.get_close_matches(str(name), list(TASKS), n=1)
        raise ConfigError([f"task.type: unknown task {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                           + f" (registered: {', '.join(TASKS)}; a new task registers with "
                           f"nlp_ssl.tasks.registry.register_task, from a module installed as a {ENTRY_POINTS!r} "
                           "entry point)"])
    return TASKS[name]


def spec_for_config(data: Any) -> TaskSpec:
    """The spec a raw `finetune` config selects through its `task.type`."""
    task = data.get("task") if isinstance(data, dict) else None
    return task_spec(task.get("type") if isinstance(task, dict) else None)


def spec_for_model(model_dir: str | Path, task: dict | None = None) -> TaskSpec:
    """The spec of a saved model: `task.type` as given (or as its run recorded in config.yaml), else the head its
    config.json names (a model fine-tuned elsewhere), else classification."""
    if task and task.get("type"):
        return task_spec(task["type"])
    model_dir = Path(model_dir)
    saved = model_dir / CONFIG_FILE
    if saved.is_file():
        from nlp_ssl.config import read_yaml

        recorded = (read_yaml(saved).get("task") or {}).get("type")
        if recorded:
            return task_spec(recorded)
    try:
        archs = json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError):
        archs = []
    for spec in TASKS.values():
        if any(str(a).endswith(h) for a in archs for h in spec.heads):
            return spec
    return task_spec(DEFAULT_TASK)


def spec_for_run(metrics: dict, task: dict) -> TaskSpec:
    """The spec of a finished run directory's figures (report): its task.type, else the QA signature of runs that
    predate the registry (`train_features`), else classification."""
    if task.get("type") and task["type"] not in TASKS:
        load_plugins()
    if task.get("type") in TASKS:
        return TASKS[task["type"]]
    first = (metrics.get("runs") or [{}])[0]
    if any(k in m for k in ("train_features", "train_questions") for m in (metrics, first)):
        return TASKS["extractive_qa"]
    return task_spec(DEFAULT_TASK)


def report_section(kind: str) -> ReportSection:
    """The report section of a kind of table (the first task that declares it; the generic percentage one else)."""
    return next((s.report for s in TASKS.values() if s.report.kind == kind), ReportSection(kind))
