"""`nlp-ssl predict MODEL_DIR input.path=FILE output=FILE.tsv [key=value ...]` (or a YAML config): predict the
labels of an unlabelled file (a GLUE test split, or any file with the task's text columns) with a fine-tuned
classifier and write a GLUE-style submission file (`index\tprediction`, labels as the GLUE server expects).

setup (the model's task from MODEL_DIR/config.yaml, the file and its ids) -> predict (on the GPU when there is
one, with the autocast the model was trained with; under `accelerate launch ... -m nlp_ssl predict`, each rank
its share of the examples, gathered in order) -> write the submission (rank 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from nlp_ssl.data.sources import DataSourceConfig


@dataclass
class PredictConfig:
    """Config of `nlp-ssl predict`.

    Attributes:
        model: a sequence-classification model directory written by `nlp-ssl finetune`.
        input: the unlabelled file (a source: `input.path=glue/sst2/test.tsv`); a label column, if any, is ignored.
        output: the submission file to write (e.g. `SST-2.tsv`, the name the GLUE server expects).
        text_columns: the file's text column(s) (null: the model's task's, e.g. `sentence` for SST-2).
        id_column: the column holding each example's id (null: `index`, `idx` or `id` when the file has one,
            else the example's position from 0).
        glue_labels: spell labels as the GLUE server expects (class ids for SST-2, CoLA, MRPC, QQP, WNLI; names
            for RTE, QNLI, MNLI); false, or a task that is no GLUE preset: class names.
        per_device_eval_batch_size: examples per prediction batch (the name `evaluate` and fine-tuning use).
    """

    model: str
    input: DataSourceConfig
    output: str
    text_columns: list[str] | None = None
    id_column: str | None = None
    glue_labels: bool = True
    per_device_eval_batch_size: int = 256

    # old spellings, refused with the new name
    RENAMED: ClassVar[dict[str, str]] = {"batch_size": "per_device_eval_batch_size"}

    def validate(self) -> list[str]:
        problems = []
        if self.per_device_eval_batch_size < 1:
            problems.append(f"per_device_eval_batch_size: must be at least 1, got {self.per_device_eval_batch_size}")
        if self.text_columns is not None and len(self.text_columns) not in (1, 2):
            problems.append(f"text_columns: one column or two (a pair), got {self.text_columns}")
        return problems


def main(cfg: PredictConfig, data_dir: str | None = None) -> dict[str, Any]:
    """Write the submission file and return {model, input, output, examples, label_counts}."""
    import dataclasses
    from collections import Counter

    from transformers import AutoModelForSequenceClassification

    from nlp_ssl.atomic import check_output_file
    from nlp_ssl.config import from_dict, read_yaml
    from nlp_ssl.distributed import join_process_group
    from nlp_ssl.errors import ConfigError
    from nlp_ssl.finetuning import autocast_dtype, check_model_dir, eval_device, is_main_process, precision_of
    from nlp_ssl.tasks.classification import TaskConfig, resolve_task
    from nlp_ssl.tasks.prediction import predict_unlabelled, unlabelled_dataset, write_submission
    from nlp_ssl.tokenization import load_tokenizer

    # --- setup ---------------------------------------------------------------------------------------
    join_process_group()  # under `accelerate launch`, the ranks share the prediction (finetuning.predict)
    check_model_dir(cfg.model)
    check_output_file(cfg.output, "output")
    saved = Path(cfg.model) / "config.yaml"
    task_dict = (read_yaml(saved).get("task") or {}) if saved.is_file() else {}
    if task_dict.get("type") == "extractive_qa":
        raise ConfigError([f"model: {cfg.model} answers questions; use `nlp-ssl answer` for extractive QA"])
    if not task_dict and cfg.text_columns is None:
        raise ConfigError([f"text_columns: {cfg.model} has no config.yaml from `nlp-ssl finetune`; name the text "
                           "column(s) of the input (e.g. text_columns=[sentence])"])
    task = from_dict(TaskConfig, task_dict, source=str(saved)) if task_dict else TaskConfig(label_column="label")
    if task_dict:
        task = resolve_task(task)
    if cfg.text_columns is not None:
        task = dataclasses.replace(task, text_columns=list(cfg.text_columns))
    model = AutoModelForSequenceClassification.from_pretrained(cfg.model).to(eval_device())
    if model.config.problem_type == "regression":
        task = dataclasses.replace(task, type="regression")
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    tokenizer = load_tokenizer(cfg.model)
    ds, ids = unlabelled_dataset(cfg.input, task, data_dir, cfg.id_column)

    # --- predict, write ------------------------------------------------------------------------------
    preds = predict_unlabelled(model, tokenizer, task, labels, ds, cfg.per_device_eval_batch_size,
                               autocast_dtype(*precision_of(cfg.model)), cfg.glue_labels)
    counts = dict(Counter(preds)) if task.type == "classification" else {}
    if not is_main_process():  # every rank has the gathered predictions; rank 0 alone writes them
        return {"model": cfg.model, "output": cfg.output, "examples": len(preds), "label_counts": counts}
    write_submission(Path(cfg.output), ids, preds)
    print(f"wrote {len(preds):,} predictions to {cfg.output}" + (f": {counts}" if counts else ""))
    return {"model": cfg.model, "output": cfg.output, "examples": len(preds), "label_counts": counts}
