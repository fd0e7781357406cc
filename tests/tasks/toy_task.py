"""A toy fine-tuning task written as a third party would write one: this file alone, no other module touched.

`length_parity`: is the number of words of a sentence even? A few dozen hand-written sentences, split into train,
selection and dev. Importing this module registers the task (`register_task`); then `nlp-ssl finetune` with
`task.type: length_parity` runs it through the one run loop (grid x seeds, curve, checkpoints, saving, card), and
`nlp-ssl evaluate MODEL_DIR` scores a saved model through the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nlp_ssl.artifact import Artifact
from nlp_ssl.tasks.registry import ReportSection, TaskSpec, register_task
from nlp_ssl.tasks.run_loop import Evaluation, FinetuneRunConfig, Roles, TaskJob

WORDS = ("the cat sat on a mat while dogs ran past old red barns near quiet green fields and small birds sang "
         "songs all day long under bright warm skies").split()


def sentences(n: int = 48) -> list[str]:
    """n sentences of 2 to 9 words, the same every time (a fixed generator)."""
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 10)))) for _ in range(n)]


SPLITS = {"train": slice(0, 32), "selection": slice(32, 40), "dev": slice(40, 48)}


@dataclass
class ParityTaskConfig:
    """The length-parity task.

    Attributes:
        type: `length_parity` (selects this task).
        max_length: tokens per sentence, special tokens included.
    """

    type: Literal["length_parity"] = "length_parity"
    max_length: int = 16


@dataclass
class ParityConfig(FinetuneRunConfig):
    """Config of `nlp-ssl finetune` for the length-parity task: the shared keys, and its task section.

    Attributes:
        task: see ParityTaskConfig.
    """

    task: ParityTaskConfig = field(default_factory=ParityTaskConfig)


def encoded_splits(tokenizer, max_length: int) -> dict[str, Any]:
    from datasets import Dataset

    texts = sentences()
    out = {}
    for name, part in SPLITS.items():
        rows = texts[part]
        enc = tokenizer(rows, truncation=True, max_length=max_length)
        out[name] = Dataset.from_dict({**enc, "labels": [int(len(t.split()) % 2 == 0) for t in rows],
                                       "length": [len(ids) for ids in enc["input_ids"]]})
    return out


def accuracy(model, ds, collator, batch_size: int) -> tuple[float, np.ndarray]:
    from nlp_ssl.tasks.inference import predict

    out, _ = predict(model, ds, collator, batch_size)
    pred = out["logits"].argmax(-1)
    return float((pred == np.asarray(ds["labels"])).mean()), pred


class ParityJob(TaskJob):
    """The task's plug-in: data, model, scoring, its own files."""

    @staticmethod
    def check(cfg: ParityConfig) -> None:
        pass

    def __init__(self, cfg: ParityConfig, data_dir: str | None):
        from transformers import AutoTokenizer

        from nlp_ssl.tasks.inference import PadCollator

        self.cfg, self.task = cfg, cfg.task
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer or cfg.model)
        self.collator = PadCollator(self.tokenizer)
        self.data = encoded_splits(self.tokenizer, cfg.task.max_length)
        self.roles = Roles("selection", "dev", "accuracy", "accuracy", oracle=False)

    def describe(self) -> str:
        return "length parity: " + ", ".join(f"{k} {len(v)}" for k, v in self.data.items())

    def train_set(self, seed: int):
        return self.data["train"]

    def new_model(self, seed: int):
        from transformers import AutoModelForSequenceClassification

        from nlp_ssl.tasks.models import build_task_model

        return build_task_model(AutoModelForSequenceClassification, self.cfg.model, self.cfg.init, seed,
                                self.cfg.train.dropout, num_labels=2, id2label={0: "odd", 1: "even"},
                                label2id={"odd": 0, "even": 1})

    def selection_scores(self, model, with_loss: bool = False) -> dict[str, float]:
        return {"accuracy": accuracy(model, self.data["selection"], self.collator, 64)[0]}

    def evaluate(self, model) -> Evaluation:
        evals, preds = {}, {}
        for split in ("selection", "dev"):
            acc, preds[split] = accuracy(model, self.data[split], self.collator, 64)
            evals[split] = {"accuracy": acc}
        return Evaluation(evals, {s: float("nan") for s in evals}, preds)

    def save(self, out: Path, model, evaluation: Evaluation) -> None:
        import json

        if self.cfg.save_predictions:
            for split, pred in evaluation.extras.items():
                rows = [{"idx": i, "prediction": int(p), "label": int(y)}
                        for i, (p, y) in enumerate(zip(pred, self.data[split]["labels"]))]
                (out / f"predictions-{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def evaluate(model_dir: str, task_dict: dict, splits: list[str] | None, batch_size: int, output_dir: str | None,
             data_dir: str | None, max_eval_samples: int | None = None) -> dict[str, Any]:
    """`nlp-ssl evaluate` of a saved length-parity model."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from nlp_ssl.tasks.inference import PadCollator

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    data = encoded_splits(tokenizer, int(task_dict.get("max_length", 16)))
    return {"model": model_dir, "eval": {s: {"accuracy": accuracy(model, data[s], PadCollator(tokenizer), batch_size)[0]}
                                         for s in (splits or ["dev"])}}


SPEC = register_task(TaskSpec(
    name="length_parity", config=f"{__name__}:ParityConfig", job=f"{__name__}:ParityJob",
    artifact=Artifact("AutoModelForSequenceClassification", "text-classification",
                      "a classifier of whether a sentence has an even number of words"),
    metrics=("accuracy",), evaluate=f"{__name__}:evaluate", report=ReportSection("classification", pct=True),
    heads=()), replace=True)
