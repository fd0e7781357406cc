"""Zero-shot semantic textual similarity: embed both sentences of each pair with a pretrained encoder (no
fine-tuning), score the pair by the cosine of the two vectors, and report the Spearman (and Pearson)
correlation of those scores with the gold similarity. The standard check of sentence embeddings (SimCSE's STS-B
numbers), and a cheap probe of any encoder's geometry.

    nlp-ssl evaluate MODEL_DIR task.type=sts_zero_shot                  # STS-B dev (../shared/data/glue/stsb)
    nlp-ssl evaluate MODEL_DIR task.type=sts_zero_shot task.pooling=mean

Pooling: `cls` (the first token's last hidden state) or `mean` (over real tokens); by default the one the model
recorded (`config.sentence_pooling`, written by the simcse objective), else `cls`.
"""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from nlp_ssl.errors import ConfigError


@dataclass
class STSZeroShotConfig:
    """Attributes:
        type: `sts_zero_shot`.
        preset: a sentence-pair regression preset with gold similarities (stsb).
        pooling: `cls` or `mean`; null: the model's recorded `sentence_pooling`, else `cls`.
        max_length: tokens per sentence (special tokens included).
    """

    type: Literal["sts_zero_shot"] = "sts_zero_shot"
    preset: str = "stsb"
    pooling: Literal["cls", "mean"] | None = None
    max_length: int = 128


def embed(model, tokenizer, texts: list[str], pooling: str, batch_size: int = 256, max_length: int = 128) -> np.ndarray:
    """Sentence vectors (N, H), batches of length-sorted texts (little padding), in the order of `texts`."""
    import torch

    from nlp_ssl.objectives.simcse import pool

    device = next(model.parameters()).device
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            enc = tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            # one sentence: token types would be all 0 (the default), and ModernBERT takes none
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            hidden = model(**enc)[0]  # (b, T, H)
            out[idx] = pool(hidden, enc["attention_mask"], pooling).float().cpu().numpy()
    model.train(was_training)
    return out


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of `a` with the same row of `b`. (N, H), (N, H) -> (N,)"""
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)


def score_pairs(model, tokenizer, text_a: list[str], text_b: list[str], gold: np.ndarray, pooling: str,
                batch_size: int = 256, max_length: int = 128) -> dict[str, float]:
    """{spearmanr, pearson, pairs, pairs_per_second} of cosine similarity against the gold scores."""
    from nlp_ssl.metrics import pearson, spearmanr

    t0 = time.perf_counter()
    cos = cosine_rows(embed(model, tokenizer, text_a, pooling, batch_size, max_length),
                      embed(model, tokenizer, text_b, pooling, batch_size, max_length))
    seconds = time.perf_counter() - t0
    return {"spearmanr": spearmanr(cos, gold), "pearson": pearson(cos, gold), "pairs": int(len(gold)),
            "pairs_per_second": len(gold) / seconds if seconds else float("nan")}


def evaluate_sts_zero_shot(model_dir: str, task_dict: dict[str, Any], data_dir: str | None, splits: list[str] | None = None,
                           batch_size: int = 256) -> dict[str, Any]:
    """Zero-shot STS of the encoder in `model_dir` on the preset's evaluation splits (STS-B: dev)."""
    from transformers import AutoModel

    from nlp_ssl.config import from_dict
    from nlp_ssl.data.sources import column
    from nlp_ssl.tasks.classification import TaskConfig, load_task, resolve_task
    from nlp_ssl.tokenization import load_tokenizer

    sts = from_dict(STSZeroShotConfig, task_dict, source=f"{model_dir} task")
    task = resolve_task(TaskConfig(preset=sts.preset, type="regression"))
    if task.text_columns is None or len(task.text_columns) != 2:
        raise ConfigError([f"task.preset: {sts.preset} is no sentence-pair task; sts_zero_shot needs pairs with gold scores"])
    data, _ = load_task(task, data_dir)
    model = AutoModel.from_pretrained(model_dir)
    tokenizer = load_tokenizer(model_dir)
    pooling = sts.pooling or getattr(model.config, "sentence_pooling", None) or "cls"
    wanted = splits or list(task.eval)  # the preset's evaluation files (STS-B: dev), not splits carved from train
    results: dict[str, Any] = {"model": model_dir, "task": f"{sts.preset}-zero-shot", "pooling": pooling, "eval": {}}
    for split in wanted:
        if split not in data:
            raise ConfigError([f"splits: no split {split!r}; the task has {list(data)}"])
        ds = data[split]
        m = score_pairs(model, tokenizer, list(column(ds, "text_a")), list(column(ds, "text_b")),
                        np.asarray(column(ds, "label"), dtype=np.float64), pooling, batch_size, sts.max_length)
        results["eval"][split] = m
        print(f"{split} ({m['pairs']:,} pairs, {pooling} pooling): spearmanr {m['spearmanr']:.4f}, pearson {m['pearson']:.4f}")
    return results


def evaluate_sts(model_dir: str, task_dict: dict[str, Any], splits: list[str] | None, batch_size: int,
                 output_dir: str | None, data_dir: str | None, max_eval_samples: int | None = None) -> dict[str, Any]:
    """`nlp-ssl evaluate MODEL task.type=sts_zero_shot` (the registry's evaluate of `sts_zero_shot`): score, and
    write metrics.json into output_dir (main process). Every pair is scored (max_eval_samples does not apply)."""
    from nlp_ssl.distributed import is_main_process
    from nlp_ssl.layout import METRICS_FILE
    from nlp_ssl.outputs import write_json_atomic

    results = evaluate_sts_zero_shot(model_dir, task_dict, data_dir, splits, batch_size)
    if output_dir and is_main_process():
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(output_dir) / METRICS_FILE, results)
    return results
