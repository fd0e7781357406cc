"""`nlp-ssl finetune CONFIG` (or `accelerate launch scripts/finetune_classification.py CONFIG`): fine-tune a
pretrained encoder (or the same architecture from scratch) for the task `task.type` names: `classification`
(the default), `regression`, `extractive_qa`, or any task registered in `nlp_ssl.tasks.registry`.

setup (the task's config checks, the model, the Trainer options, the output dir, the task's data) -> train (one run;
or a learning-rate grid on the first seed scored on the selection split, then every seed at the best rate) ->
validate (every evaluation split; the selection split chooses, the report split is the headline) -> save (a model
directory per run, the summary over seeds). The loop is `tasks.run_loop.finetune`; the config class comes from the
task's registry entry (`cli.recipe_for`).
"""

from __future__ import annotations

from typing import Any

from nlp_ssl.tasks.classification_finetune import FinetuneConfig

__all__ = ["FinetuneConfig", "main"]


def main(cfg: Any, data_dir: str | None = None) -> dict[str, Any]:
    """Fine-tune and return the metrics (also written to output_dir/metrics.json)."""
    from nlp_ssl.tasks.run_loop import finetune

    return finetune(cfg, data_dir)
