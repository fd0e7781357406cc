"""Predictions on unlabelled test files (GLUE's test splits, or any file with the task's text columns), written as
GLUE-style submission files: a header `index\tprediction`, then one line per example with its id and the
predicted label, spelled as the GLUE server expects it.

GLUE wants class ids for SST-2, CoLA, MRPC, QQP and WNLI (0/1, the Hub's label order, which the presets keep),
class names for RTE, QNLI and MNLI (`entailment`, ...), and a score for STS-B. A task that is not a GLUE preset
gets its class names. The GLUE server reads one file per task (SST-2.tsv, ...; `GLUE_FILES`) from a zip.

Example:
    >>> ds, ids = unlabelled_dataset(DataSourceConfig(path="glue/sst2/test.tsv"), task, data_dir)
    >>> write_submission(Path("SST-2.tsv"), ids, predict_unlabelled(model, tokenizer, task, labels, ds, 256))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nlp_ssl.data.sources import DataSourceConfig, column, describe_source, load_source
from nlp_ssl.errors import DataError
from nlp_ssl.tasks.classification import TaskConfig, text_columns

GLUE_FILES = {"sst2": "SST-2.tsv", "cola": "CoLA.tsv", "mrpc": "MRPC.tsv", "qqp": "QQP.tsv", "wnli": "WNLI.tsv",
              "rte": "RTE.tsv", "qnli": "QNLI.tsv", "mnli": "MNLI-m.tsv", "stsb": "STS-B.tsv"}
_GLUE_IDS = ("sst2", "cola", "mrpc", "qqp", "wnli")  # GLUE wants the class id (0/1) for these
ID_COLUMNS = ("index", "idx", "id")  # an example's id in a test file, when it has one


def label_strings(pred: np.ndarray, task: TaskConfig, labels: list[str] | None, glue: bool = True) -> list[str]:
    """Predictions as written in a submission: GLUE's spelling for GLUE presets (with `glue`), else class names;
    regression scores with three decimals.

    Example:
        >>> t = TaskConfig(preset="sst2")
        >>> label_strings(np.array([1, 0]), t, ["negative", "positive"]), label_strings(np.array([1]), t, ["negative", "positive"], glue=False)
        (['1', '0'], ['positive'])
    """
    if task.type == "regression":
        return [f"{float(p):.3f}" for p in pred]
    if glue and task.preset in _GLUE_IDS:
        return [str(int(p)) for p in pred]
    assert labels is not None
    return [labels[int(p)] for p in pred]


def unlabelled_dataset(src: DataSourceConfig, task: TaskConfig, data_dir: str | None, id_column: str | None = None):
    """Load a test file with the task's text columns (labels, if any, are ignored) -> (Dataset(text_a, [text_b],
    label, idx), ids as text). Ids: `id_column`, else the file's `index`/`idx`/`id` column, else 0..N-1."""
    from datasets import Dataset

    raw = load_source(src, data_dir, list(task.text_columns))
    where = describe_source(src, data_dir)
    if len(raw) == 0:
        raise DataError(f"{where}: the file holds no example to predict")
    names = raw.column_names
    if id_column is not None and id_column not in names:
        raise DataError(f"{where}: no id column {id_column!r}; it has {names}")
    id_col = id_column or next((c for c in ID_COLUMNS if c in names), None)
    ids = [str(v) for v in column(raw, id_col)] if id_col else [str(i) for i in range(len(raw))]
    cols: dict[str, Any] = text_columns(raw, task, src, data_dir)
    cols["label"] = [0.0 if task.type == "regression" else 0] * len(raw)  # unused: the encoder wants a column
    cols["idx"] = list(range(len(raw)))
    return Dataset.from_dict(cols), ids


def predict_unlabelled(model, tokenizer, task: TaskConfig, labels: list[str] | None, ds, batch_size: int,
                       dtype=None, glue: bool = True) -> list[str]:
    """Predict every example of an `unlabelled_dataset` -> predicted labels as a submission writes them."""
    from nlp_ssl.tasks.inference import PadCollator, predict
    from nlp_ssl.tasks.classification import encode

    out, _ = predict(model, encode(ds, tokenizer, task), PadCollator(tokenizer), batch_size, dtype=dtype)
    logits = out["logits"]
    pred = logits.reshape(len(logits), -1)[:, 0] if task.type == "regression" else logits.argmax(-1)
    return label_strings(pred, task, labels, glue)


def write_submission(path: Path, ids: list[str], predictions: list[str]) -> None:
    """`index\tprediction` and one line per example, written atomically."""
    from nlp_ssl.atomic import atomic_write_text

    atomic_write_text(path, "index\tprediction\n" + "".join(f"{i}\t{p}\n" for i, p in zip(ids, predictions)))


def predict_file(model_dir: str, task_dict: dict[str, Any], input: DataSourceConfig, output: str,
                 text_columns: list[str] | None, id_column: str | None, glue_labels: bool, batch_size: int,
                 data_dir: str | None) -> dict[str, Any]:
    """`nlp-ssl predict` for a sequence classifier (the registry's `predict` of classification and regression):
    predict every example of `input` and write the submission file `output` (main process) -> {model, output,
    examples, label_counts}. `task_dict`: the task the model was fine-tuned on (empty: a model from elsewhere,
    with `text_columns` given)."""
    import dataclasses
    from collections import Counter

    from transformers import AutoModelForSequenceClassification

    from nlp_ssl.config import from_dict
    from nlp_ssl.distributed import is_main_process
    from nlp_ssl.errors import ConfigError
    from nlp_ssl.tasks.classification import resolve_task
    from nlp_ssl.tasks.inference import autocast_dtype, eval_device, precision_of
    from nlp_ssl.tokenization import load_tokenizer

    if not task_dict and text_columns is None:
        raise ConfigError([f"text_columns: {model_dir} has no config.yaml from `nlp-ssl finetune`; name the text "
                           "column(s) of the input (e.g. text_columns=[sentence])"])
    task = from_dict(TaskConfig, task_dict, source=f"{model_dir}/config.yaml") if task_dict else \
        TaskConfig(label_column="label")
    if task_dict:
        task = resolve_task(task)
    if text_columns is not None:
        task = dataclasses.replace(task, text_columns=list(text_columns))
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(eval_device())
    regression = model.config.problem_type == "regression"  # the saved head says what it predicts
    if regression:
        task = dataclasses.replace(task, type="regression")
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    tokenizer = load_tokenizer(model_dir)
    ds, ids = unlabelled_dataset(input, task, data_dir, id_column)
    preds = predict_unlabelled(model, tokenizer, task, labels, ds, batch_size, autocast_dtype(*precision_of(model_dir)),
                               glue_labels)
    counts = {} if regression else dict(Counter(preds))
    result = {"model": model_dir, "output": output, "examples": len(preds), "label_counts": counts}
    if not is_main_process():  # every rank has the gathered predictions; rank 0 alone writes them
        return result
    write_submission(Path(output), ids, preds)
    print(f"wrote {len(preds):,} predictions to {output}" + (f": {counts}" if counts else ""))
    return result
