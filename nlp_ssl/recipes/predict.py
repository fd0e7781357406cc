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
from nlp_ssl.layout import CONFIG_FILE


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
    """Write the submission file and return {model, output, examples, label_counts}."""
    from nlp_ssl.atomic import check_output_file
    from nlp_ssl.config import read_yaml
    from nlp_ssl.distributed import join_process_group
    from nlp_ssl.errors import ConfigError
    from nlp_ssl.tasks.models import check_model_dir
    from nlp_ssl.tasks.registry import spec_for_model

    # --- setup ---------------------------------------------------------------------------------------
    join_process_group()  # under `accelerate launch`, the ranks share the prediction (tasks.inference.predict)
    check_model_dir(cfg.model)
    check_output_file(cfg.output, "output")
    saved = Path(cfg.model) / CONFIG_FILE
    task_dict = (read_yaml(saved).get("task") or {}) if saved.is_file() else {}
    spec = spec_for_model(cfg.model, task_dict)
    if spec.predict is None:
        raise ConfigError([f"model: {cfg.model} is a {spec.name} model; {spec.predict_instead or 'it has no predict'}"])

    # --- predict, write (the task's own) -------------------------------------------------------------
    from nlp_ssl.tasks.registry import load

    return load(spec.predict)(cfg.model, task_dict, cfg.input, cfg.output, cfg.text_columns, cfg.id_column,
                              cfg.glue_labels, cfg.per_device_eval_batch_size, data_dir)
