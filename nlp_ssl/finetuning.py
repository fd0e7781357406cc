"""Fine-tuning components shared by the classification and question-answering recipes: the optimisation
config, building a task model from a pretrained encoder (or the same architecture at random), dynamic padding,
length-sorted prediction, and saving a model directory that loads without `nlp_ssl`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal

import numpy as np

from nlp_ssl.errors import ConfigError, DataError, ModelError

Init = Literal["pretrained", "scratch"]


@dataclass
class FinetuneTrainConfig:
    """Optimisation of a fine-tuning run.

    Attributes:
        learning_rate: peak learning rate; or a list of rates, a grid: each rate is trained with the first seed
            and scored on the task's selection split; the best one then runs with every seed.
        per_device_train_batch_size: training examples (QA: windows) per device per step.
        per_device_eval_batch_size: examples per prediction batch (independent of training).
        num_train_epochs: passes over the training set when max_steps is -1.
        max_steps: optimizer steps (-1: use num_train_epochs).
        warmup_ratio: share of the steps spent warming up; then linear (or cosine) decay to zero.
        lr_scheduler_type: `linear`, `cosine` or `constant` after warm-up.
        weight_decay: AdamW decoupled weight decay (not on norms and biases).
        max_grad_norm: gradient clipping (0: none).
        dropout: hidden, attention and classifier dropout of the task model (the encoder may have been
            pretrained without).
        group_by_length: batch examples of similar length together (less padding); the order stays random.
        logging_steps: log every N steps.
        report_to: logging integrations (`tensorboard`, or empty).
        bf16: bfloat16 autocast (GPU; slower than fp32 on this project's CPUs).
        layer_lr_decay: layer-wise learning-rate decay: the task head (and pooler) trains at the learning rate,
            encoder layer l of L at rate x decay^(L + 1 - l), the embeddings at rate x decay^(L + 1) (ELECTRA,
            Clark et al. 2020, use 0.8 for base models). 1: one rate for all.
        extend_lr_grid: when the best rate of a grid of two or more sits at the grid's edge, also try one step
            beyond that edge (the step is the ratio of the two outermost rates on that side) and pick again.
        eval_steps: score the selection split every N optimizer steps during training, record the learning
            curve (learning_curve.json, plotted in plots/training.png) and keep the best weights (classification,
            regression and extractive QA; 0: score once at the end).
        early_stopping_patience: with eval_steps, stop after this many evaluations without a new best
            (0: train to the end of the schedule; the best weights are kept either way).
    """

    learning_rate: float | list[float] = 1e-4
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 256
    num_train_epochs: float = 3.0
    max_steps: int = -1
    warmup_ratio: float = 0.1
    lr_scheduler_type: Literal["linear", "cosine", "constant"] = "linear"
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    dropout: float = 0.1
    group_by_length: bool = True
    logging_steps: int = 50
    report_to: list[str] = field(default_factory=list)
    bf16: bool = False
    layer_lr_decay: float = 1.0
    extend_lr_grid: bool = False
    eval_steps: int = 0
    early_stopping_patience: int = 0

    # old spellings, refused with the new name (and migrated when an older run's config.yaml is read)
    RENAMED: ClassVar[dict[str, str]] = {"learning_rates": "learning_rate",
                                         "per_device_batch_size": "per_device_train_batch_size",
                                         "eval_batch_size": "per_device_eval_batch_size",
                                         "num_epochs": "num_train_epochs", "lr_scheduler": "lr_scheduler_type"}

    @property
    def learning_rate_grid(self) -> list[float]:
        """`learning_rate` as a list (one rate, or the grid)."""
        lr = self.learning_rate
        return [float(r) for r in lr] if isinstance(lr, (list, tuple)) else [float(lr)]

    def validate(self) -> list[str]:
        problems = []
        if not 0 < self.layer_lr_decay <= 1:
            problems.append(f"layer_lr_decay: a factor in (0, 1], got {self.layer_lr_decay}")
        if self.eval_steps < 0 or self.early_stopping_patience < 0:
            problems.append("eval_steps, early_stopping_patience: must be 0 or more")
        if self.early_stopping_patience and not self.eval_steps:
            problems.append("early_stopping_patience: needs eval_steps > 0 (how often to score the selection split)")
        grid = self.learning_rate_grid
        if not grid or any(lr <= 0 for lr in grid) or len(set(grid)) != len(grid):
            problems.append(f"learning_rate: a positive rate, or a list of distinct positive rates, got {self.learning_rate}")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "logging_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be at least 1")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout: must be in [0, 1), got {self.dropout}")
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append("max_steps: must be positive, or -1 to train for num_train_epochs")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            problems.append("num_train_epochs: must be positive")
        from nlp_ssl.training import optimizer_range_problems

        return problems + optimizer_range_problems(self)


def check_model_dir(path: str, tokenizer: str | None = None) -> None:
    """A pretrained model directory must hold config.json and (unless another tokenizer is given) a tokenizer.
    A Hub id (`bert-base-uncased`) is downloaded into the Hub cache first (`hub.local_path`)."""
    from nlp_ssl.hub import local_path

    p = Path(local_path(path, "model"))
    if tokenizer is not None:
        local_path(tokenizer, "tokenizer")
    if not p.is_dir():
        raise ModelError(f"model: {p} does not exist; pretrain one (`nlp-ssl pretrain CONFIG`) or fix the path")
    if not (p / "config.json").is_file():
        raise ModelError(f"model: {p} holds no config.json; point at a directory written by `nlp-ssl pretrain` "
                          "or `save_pretrained`")
    if tokenizer is None and not (p / "tokenizer.json").is_file():
        raise ModelError(f"model: {p} has no tokenizer (tokenizer.json); save the tokenizer into it, or set "
                          "`tokenizer:` to the tokenizer directory the encoder was pretrained with")


def check_trained_head(path: str, head: str, fix: str) -> None:
    """Refuse a model directory whose weights have no trained `head` (e.g. `ForQuestionAnswering`): loading it
    would silently add a randomly initialised head and answer with noise."""
    try:
        archs = json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError) as e:
        raise ModelError(f"model: {path}/config.json cannot be read ({e}); {fix}") from None
    if not any(str(a).endswith(head) for a in archs):
        raise ModelError(f"model: {path} holds a {', '.join(archs) or 'model'} without a trained {head} head; {fix}")


_DROPOUT_KEYS = {
    "modernbert": ("embedding_dropout", "mlp_dropout", "attention_dropout", "classifier_dropout"),
    "default": ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"),
}


def build_task_model(auto_class, model_dir: str, init: Init, seed: int, dropout: float, **config_kwargs: Any):
    """A task model (`AutoModelFor...`) on the encoder in `model_dir`: its weights (`pretrained`) or the same
    architecture at random (`scratch`, seeded), with the task head initialised from `seed` in both cases."""
    import torch
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    from nlp_ssl.hub import local_path

    model_dir = local_path(model_dir, "model")
    config = AutoConfig.from_pretrained(model_dir, **config_kwargs)
    for key in _DROPOUT_KEYS.get(config.model_type, _DROPOUT_KEYS["default"]):
        setattr(config, key, dropout)
    torch.manual_seed(seed)
    if init == "scratch":
        return auto_class.from_config(config)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized head" notice is expected here
    try:
        return auto_class.from_pretrained(model_dir, config=config)
    finally:
        hf_logging.set_verbosity(verbosity)


class PadCollator:
    """Dynamic padding: pads each batch to its own longest example; drops columns the model does not take."""

    def __init__(self, tokenizer, keep: tuple[str, ...] = ("input_ids", "token_type_ids", "attention_mask", "labels"),
                 pad_to_multiple_of: int | None = None):
        from transformers import DataCollatorWithPadding

        self.keep = keep
        self.pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def __call__(self, features: list[dict]) -> dict:
        return self.pad([{k: v for k, v in f.items() if k in self.keep} for f in features])


def training_arguments(out_dir: str, cfg: FinetuneTrainConfig, lr: float, seed: int, **extra: Any):
    """TrainingArguments for a fine-tuning run (no checkpoints; evaluation is done by `predict`)."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size, learning_rate=lr, weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm, warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio
        lr_scheduler_type={"constant": "constant_with_warmup"}.get(cfg.lr_scheduler_type, cfg.lr_scheduler_type),
        num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps, save_strategy="no", eval_strategy="no",
        logging_steps=cfg.logging_steps, report_to=list(cfg.report_to), seed=seed, data_seed=seed, bf16=cfg.bf16,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random", length_column_name="length",
        remove_unused_columns=False, label_names=extra.pop("label_names", ["labels"]),
        use_cpu=not torch.cuda.is_available(), disable_tqdm=extra.pop("disable_tqdm", None), **extra)


_LAYER = re.compile(r"\.layers?\.(\d+)\.")


def classifier_pooling(model_type: str, pooling: str) -> dict[str, Any]:
    """Config keys that make a sequence classifier pool `cls` or `mean`.

    Mean pooling is offered where the saved model records it and the stock class applies it on loading
    (ModernBERT's `classifier_pooling`), so the fine-tuned directory predicts the same under plain transformers.
    BERT, RoBERTa and ELECTRA classifiers read [CLS] only: a mean-pooled head there would load as a different
    model without nlp_ssl (and custom modelling code is not shipped), so it is refused.

    Example:
        >>> classifier_pooling("modernbert", "mean")
        {'classifier_pooling': 'mean'}
    """
    if model_type == "modernbert":
        return {"classifier_pooling": pooling}
    if pooling != "cls":
        raise ConfigError([f"pooling: mean needs an encoder whose saved classifier records its pooling (modernbert); "
                           f"a {model_type} classifier reads [CLS] only and would not load as trained. Use pooling: cls"])
    return {}


def layer_depth(name: str, num_layers: int) -> int:
    """Depth of a parameter for layer-wise rates: 0 embeddings, l + 1 for encoder layer l (0-based), and
    num_layers + 1 for everything above the encoder (pooler, final norm, task head).

    Example:
        >>> layer_depth("bert.encoder.layer.3.output.dense.weight", 4), layer_depth("classifier.weight", 4)
        (4, 5)
    """
    m = _LAYER.search(name)
    if m:
        return int(m.group(1)) + 1
    if "embeddings" in name or "embed_tokens" in name:
        return 0
    return num_layers + 1


def layerwise_param_groups(model, lr: float, decay: float, weight_decay: float,
                           decay_names: set[str] | None = None) -> list[dict[str, Any]]:
    """AdamW parameter groups with rate lr x decay^(L + 1 - depth) (see `layer_depth`), each split into
    with / without weight decay (`decay_names`: the parameters that get it; None: all but biases and norms)."""
    num_layers = model.config.num_hidden_layers
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        depth = layer_depth(name, num_layers)
        wd = name in decay_names if decay_names is not None else not (name.endswith("bias") or "norm" in name.lower())
        g = groups.setdefault((depth, wd), {"params": [], "names": [], "lr": lr * decay ** (num_layers + 1 - depth),
                                            "weight_decay": weight_decay if wd else 0.0})
        g["params"].append(p)
        g["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def with_layerwise_lr(trainer_class, decay: float):
    """A Trainer subclass whose AdamW uses `layerwise_param_groups` (the Trainer's own optimizer otherwise)."""

    class LayerwiseLRTrainer(trainer_class):
        def create_optimizer(self, model=None):
            if self.optimizer is None:
                m = self.model if model is None else model
                groups = layerwise_param_groups(m, self.args.learning_rate, decay, self.args.weight_decay,
                                                set(self.get_decay_parameter_names(m)))
                for g in groups:
                    g.pop("names")
                optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, m)
                self.optimizer = optimizer_cls(groups, **kwargs)
            return self.optimizer

    return LayerwiseLRTrainer


def selection_early_stopping(evaluate, metric: str, every: int, patience: int = 0):
    """A TrainerCallback that scores the model every `every` steps with `evaluate(model) -> {metric: value}`,
    records the learning curve (`.curve`: [{step, <metrics>}]), keeps a copy of the best weights, stops after
    `patience` evaluations without a new best (0: never), and restores the best weights when training ends."""
    from transformers import TrainerCallback

    class SelectionEarlyStopping(TrainerCallback):
        def __init__(self):
            self.curve: list[dict[str, Any]] = []
            self.best, self.best_step, self.best_state, self.since_best = -math.inf, None, None, 0

        def _score(self, step: int, model, control) -> None:
            scores = evaluate(model)
            value = scores[metric]
            self.curve.append({"step": step, **{k: v for k, v in scores.items() if isinstance(v, (int, float))}})
            if value > self.best:  # NaN never counts as a best
                self.best, self.best_step, self.since_best = value, step, 0
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                self.since_best += 1
                if patience and self.since_best >= patience:
                    control.should_training_stop = True
            print(f"  step {step}: {metric} {value:.4f} (best {self.best:.4f} at step {self.best_step})", flush=True)

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % every == 0:
                self._score(state.global_step, model, control)
            return control

        def on_train_end(self, args, state, control, model=None, **kw):
            if not self.curve or self.curve[-1]["step"] != state.global_step:
                self._score(state.global_step, model, control)
            if self.best_state is not None:
                model.load_state_dict(self.best_state)

    return SelectionEarlyStopping()


def grid_extension(scores: dict[float, float]) -> float | None:
    """The next rate to try when the best of a grid (>= 2 rates) sits at its edge, else None: one geometric
    step beyond that edge, the step being the ratio between the edge rate and its neighbour.

    Example:
        >>> grid_extension({1e-4: 0.80, 3e-4: 0.82, 1e-3: 0.85})   # best at the top edge -> 1e-3 x (1e-3 / 3e-4)
        0.0033333333333333335
        >>> grid_extension({1e-4: 0.80, 3e-4: 0.86, 1e-3: 0.85}) is None
        True
    """
    valid = {lr: s for lr, s in scores.items() if not math.isnan(s)}
    if len(scores) < 2 or not valid:
        return None
    rates = sorted(scores)
    best = max(valid, key=valid.get)
    if best == rates[-1]:
        return rates[-1] * (rates[-1] / rates[-2])
    if best == rates[0]:
        return rates[0] * (rates[0] / rates[1])
    return None


def train(model, args, train_set, collator, tokenizer, layer_lr_decay: float = 1.0,
          callbacks: tuple = ()) -> tuple[Any, dict[str, float]]:
    """Train with the HF Trainer (stops with a clear error on a non-finite loss); returns (trainer, stats).

    With `layer_lr_decay` < 1 the optimizer uses layer-wise rates (`layerwise_param_groups`). An encoder with
    fewer token types than the tokenizer emits for sentence pairs (RoBERTa's one) gets the missing ones first
    (`modeling.align_token_types`), so pair tasks do not index past its table."""
    from nlp_ssl.modeling import align_token_types
    from nlp_ssl.training import make_trainer_class

    if len(train_set) == 0:
        raise DataError("the training set is empty")
    align_token_types(model, tokenizer)
    Trainer = make_trainer_class()
    if layer_lr_decay != 1.0:
        Trainer = with_layerwise_lr(Trainer, layer_lr_decay)
    trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=collator,
                      processing_class=tokenizer, callbacks=list(callbacks))
    t0 = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - t0
    steps = trainer.state.global_step
    examples = steps * args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    return trainer, {"train_seconds": seconds, "steps": steps, "train_loss": result.training_loss,
                     "train_examples_per_second": examples / seconds if seconds else float("nan")}


def predict(model, dataset, collator, batch_size: int, output_names: tuple[str, ...] = ("logits",)) -> tuple[dict[str, np.ndarray], float]:
    """Model outputs for every example, in dataset order; batches are formed from length-sorted examples so
    little padding is computed. Returns ({name: array (N, ...)}, seconds).

    Under several ranks (`accelerate launch`) each rank predicts its share (`distributed.shard_of`) and the rows
    are gathered back in dataset order on every rank (`distributed.gather_rows`): the same arrays as one process,
    in 1/world of the time. Every rank must then call it at the same point (it does: the callers are symmetric)."""
    import torch

    from nlp_ssl.distributed import distributed_world, gather_rows, shard_of

    device = next(model.parameters()).device
    from nlp_ssl.data.sources import column

    lengths = np.asarray(column(dataset, "length")) if "length" in dataset.column_names else np.zeros(len(dataset))
    rank, world = distributed_world()
    order = shard_of(np.argsort(-lengths, kind="stable"), rank, world)
    outs: dict[str, list] = {name: [None] * len(order) for name in output_names}
    position = {int(j): p for p, j in enumerate(order)}  # example index -> row of this rank's share
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    with torch.inference_mode():
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


def save_model_dir(out: Path, model, tokenizer, metrics: dict[str, Any]) -> None:
    """A standard model directory: weights + config (with label names), tokenizer, metrics.json."""
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def check_fits(tokenizer, model_config, max_length: int, where: str = "task.max_length") -> None:
    from nlp_ssl.modeling import max_sequence_length

    limit = max_sequence_length(model_config)
    if max_length > limit:
        raise ConfigError([f"{where}: {max_length} tokens exceed the model's {limit} positions; lower it"])
    if len(tokenizer) > model_config.vocab_size:
        raise ModelError(f"tokenizer: {len(tokenizer)} entries but the model's vocabulary has {model_config.vocab_size}; "
                         "use the tokenizer the encoder was pretrained with")
    check_special_ids(tokenizer, model_config)


def check_special_ids(tokenizer, model_config, where: str = "tokenizer") -> None:
    """The special token ids the model was built with (pad, bos, eos, cls, sep) must be the tokenizer's: a
    tokenizer of the same size but another vocabulary would otherwise train and score silently wrong."""
    pairs = [("pad_token_id", tokenizer.pad_token_id), ("bos_token_id", tokenizer.bos_token_id or tokenizer.cls_token_id),
             ("eos_token_id", tokenizer.eos_token_id or tokenizer.sep_token_id), ("cls_token_id", tokenizer.cls_token_id),
             ("sep_token_id", tokenizer.sep_token_id)]
    wrong = [f"{name} {getattr(model_config, name)} in the model but {tok_id} in the tokenizer" for name, tok_id in pairs
             if tok_id is not None and getattr(model_config, name, None) is not None and getattr(model_config, name) != tok_id]
    if wrong:
        raise ModelError(f"{where}: the tokenizer does not match the model ({'; '.join(wrong)}); use the tokenizer "
                         "the encoder was pretrained with")


def is_main_process() -> bool:
    """True on the process that writes outputs (rank 0 under `accelerate launch`, or the only process)."""
    from accelerate import PartialState

    return PartialState().is_main_process


def wait_for_everyone() -> None:
    from accelerate import PartialState

    PartialState().wait_for_everyone()


@contextlib.contextmanager
def main_process_output(final: str | Path) -> Iterator[Path]:
    """Where a run writes its files: on the main process a temporary directory that replaces `final` when the
    block succeeds (`runinfo.atomic_dir`); on the other ranks a scratch directory that is thrown away. All
    ranks meet after the block, so no rank reads `final` before it is complete."""
    from nlp_ssl.runinfo import atomic_dir

    if is_main_process():
        with atomic_dir(final) as tmp:
            yield tmp
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp)
    wait_for_everyone()


def keep_training_logs(work_dir: str | Path, out: Path, log_history: list[dict]) -> None:
    """Keep what the Trainer logged in its scratch `work_dir`: `log_history.json` and, when TensorBoard logging is
    on (`train.report_to: [tensorboard]`), its event files under `out/tensorboard/`."""
    import shutil

    (out / "log_history.json").write_text(json.dumps(log_history, indent=1) + "\n")
    runs = Path(work_dir) / "runs"  # the Trainer's default TensorBoard directory under its output_dir
    if runs.is_dir():
        shutil.copytree(runs, out / "tensorboard", dirs_exist_ok=True)
