"""Running a task model over a dataset: dynamic padding, length-sorted batched prediction (sharded over ranks
under `accelerate launch`), and where and in which precision evaluation runs.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np

from nlp_ssl.layout import CONFIG_FILE


class PadCollator:
    """Dynamic padding: pads each batch to its own longest example; drops columns the model does not take."""

    def __init__(self, tokenizer, keep: tuple[str, ...] = ("input_ids", "token_type_ids", "attention_mask", "labels"),
                 pad_to_multiple_of: int | None = None):
        from transformers import DataCollatorWithPadding

        self.keep = keep
        self.pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def __call__(self, features: list[dict]) -> dict:
        return self.pad([{k: v for k, v in f.items() if k in self.keep} for f in features])


def predict(model, dataset, collator, batch_size: int, output_names: tuple[str, ...] = ("logits",),
            dtype=None) -> tuple[dict[str, np.ndarray], float]:
    """Model outputs for every example, in dataset order; batches are formed from length-sorted examples so
    little padding is computed. Runs where the model is (the GPU after training on one), under autocast to
    `dtype` (`autocast_dtype`: as training; float16 only on a GPU). Returns ({name: array (N, ...)}, seconds).

    Under several ranks (`accelerate launch`) each rank predicts its share (`distributed.shard_of`) and the rows
    are gathered back in dataset order on every rank (`distributed.gather_rows`): the same arrays as one process,
    in 1/world of the time. Every rank must then call it at the same point (it does: the callers are symmetric)."""
    import torch

    from nlp_ssl.distributed import distributed_world, gather_rows, shard_of

    device = next(model.parameters()).device
    if dtype == torch.float16 and device.type != "cuda":
        dtype = None  # float16 autocast is for GPUs (fp16 training is refused on CPU)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    from nlp_ssl.data.sources import column

    lengths = np.asarray(column(dataset, "length")) if "length" in dataset.column_names else np.zeros(len(dataset))
    rank, world = distributed_world()
    order = shard_of(np.argsort(-lengths, kind="stable"), rank, world)
    outs: dict[str, list] = {name: [None] * len(order) for name in output_names}
    position = {int(j): p for p, j in enumerate(order)}  # example index -> row of this rank's share
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    from nlp_ssl.progress import progress_bar

    bar = progress_bar(total=-(-len(order) // batch_size), desc="predict", unit="batch", enabled=rank == 0)
    with torch.inference_mode(), autocast, bar:
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            rows = dataset[[int(j) for j in idx]]  # one Arrow read per batch
            batch = collator([{k: rows[k][r] for k in rows} for r in range(len(idx))])
            batch.pop("labels", None)
            batch.pop("start_positions", None)
            batch.pop("end_positions", None)
            result = model(**{k: v.to(device) for k, v in batch.items()})
            for name in output_names:
                values = result[name].float().cpu().numpy()
                for row, j in enumerate(idx):
                    outs[name][position[int(j)]] = values[row]
            bar.update(1)
    outs = gather_rows(order, outs, len(dataset))  # in dataset order; with one process, only placed
    seconds = time.perf_counter() - t0
    model.train(was_training)
    return {name: _stack(v) for name, v in outs.items()}, seconds


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    """Stack per-example outputs; sequence outputs (different lengths) are padded with -inf."""
    if not rows:
        return np.zeros((0,))
    if rows[0].ndim == 0 or all(r.shape == rows[0].shape for r in rows):
        return np.stack(rows)
    width = max(r.shape[0] for r in rows)
    out = np.full((len(rows), width), -np.inf, dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
    return out


def eval_device(cuda_available: bool | None = None):
    """Where evaluation and prediction run: the CUDA GPU when there is one (as the Trainer trains; under
    `accelerate launch`, this rank's own GPU, `LOCAL_RANK`), else the CPU."""
    import os

    import torch

    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")


def autocast_dtype(bf16: bool, fp16: bool):
    """The autocast dtype evaluation uses: the one training used (train.bf16 / train.fp16), or None (fp32)."""
    import torch

    return torch.bfloat16 if bf16 else torch.float16 if fp16 else None


def precision_of(model_dir: str | Path) -> tuple[bool, bool]:
    """(bf16, fp16) that the run which wrote `model_dir` trained with (its config.yaml), else (False, False)."""
    from nlp_ssl.config import read_yaml

    saved = Path(model_dir) / CONFIG_FILE
    train = (read_yaml(saved).get("train") or {}) if saved.is_file() else {}
    return bool(train.get("bf16")), bool(train.get("fp16"))
