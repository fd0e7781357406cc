"""Sentence-order prediction (ALBERT, Lan et al. 2020) as an auxiliary loss beside masked LM.

Each document-layout block (`prepare` with `layout: documents`: `[CLS] piece [SEP]`, one document's consecutive
tokens) is split at a random point into two consecutive segments A and B; half of the pairs are swapped:

    kept:     [CLS] A [SEP] B [SEP]     token types 0...0 1...1     sentence_order_label 0
    swapped:  [CLS] B [SEP] A [SEP]                                  sentence_order_label 1

Both come from the same document, so the task is the order, not the topic (NSP's weakness). Masked-LM masking
then applies to the pair as usual. A small head (dense, tanh, 2 classes) reads the [CLS] state; the loss is
MLM + `sentence_order_weight` x cross-entropy of that head. Pieces of fewer than 2 tokens have no order to
predict (label -100). Segments are cut at a token, not a sentence boundary (no sentence splitter is assumed).

Saved: the masked-LM model as usual (loads with `AutoModelForMaskedLM`, `pipeline("fill-mask")`); the order head
goes to `sentence_order_head.safetensors` (resuming only).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from nlp_ssl.artifact import Artifact
from nlp_ssl.errors import ConfigError, DataError
from nlp_ssl.objectives.collators import MLMCollator
from nlp_ssl.objectives.masking import BatchRNG
from nlp_ssl.objectives.registry import ObjectiveConfig, ObjectiveSetup, block_size_of, validation_split

HEAD_FILE = "sentence_order_head.safetensors"
# What the run saves: the masked-LM model as `objectives/mlm.py` saves it (the order head only for resuming).
ARTIFACT = Artifact("AutoModelForMaskedLM", "fill-mask",
                    "a masked-language model (trained with sentence-order prediction as well): the encoder with its "
                    f"token-prediction head; the order head is in {HEAD_FILE}")
_ORDER_SEED = 7919  # offsets the split/swap draws from the masking draws of the same example


def make_pair(ids: Sequence[int], length: int, u_swap: float, u_split: float, cls_id: int, sep_id: int,
              pad_id: int, word_start: Sequence[int] | None = None):
    """One block -> (input_ids, token_type_ids, word_start or None, pair length, label) of the same width.

    `ids[:length]` is `[CLS] piece [SEP]`; the piece is cut after 1 + floor(u_split x (m - 1)) of its m tokens
    and the halves are swapped when u_swap < 0.5.
    """
    width = len(ids)
    piece = list(ids[1:length - 1])
    ws = list(word_start[1:length - 1]) if word_start is not None else None
    m = len(piece)
    if m < 2:  # nothing to order: the block as it is, no label
        out_ws = list(word_start) if word_start is not None else None
        return list(ids), [0] * width, out_ws, length, -100
    k = 1 + min(int(u_split * (m - 1)), m - 2)  # 1 <= k <= m - 1
    a, b = piece[:k], piece[k:]
    wa, wb = (ws[:k], ws[k:]) if ws is not None else (None, None)
    label = int(u_swap < 0.5)
    if label:
        a, b, wa, wb = b, a, wb, wa
    seq = [cls_id] + a + [sep_id] + b + [sep_id]
    types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    n = len(seq)  # m + 3 <= width (document blocks reserve the slot)
    assert n <= width, (n, width)
    out_ws = None
    if ws is not None:
        wa, wb = list(wa), list(wb)
        wa[0] = wb[0] = 1  # each segment starts a word
        out_ws = [1] + wa + [1] + wb + [1] + [0] * (width - n)
    return seq + [pad_id] * (width - n), types + [0] * (width - n), out_ws, n, label


@dataclass
class SentenceOrderCollator:
    """Document blocks -> masked segment pairs with `token_type_ids`, `attention_mask`, `labels` (MLM) and
    `sentence_order_label`. Split and swap draws are seeded per example like the masks (see `BatchRNG`)."""

    mlm: MLMCollator
    cls_id: int
    sep_id: int
    seed: int = 0
    use_token_types: bool = True

    @property
    def epoch(self) -> int:
        return self.mlm.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.mlm.epoch = value

    def pairs(self, features: Sequence[dict], indices: list[int] | None):
        B = len(features)
        rng = BatchRNG.per_example(self.seed + _ORDER_SEED, self.mlm.epoch, indices) if indices is not None \
            else BatchRNG.sequential(self.mlm.generator)
        u = rng.rand((B, 2))  # (B, 2): swap, split point
        rows = [make_pair(f["input_ids"], int(f["length"]), float(u[i, 0]), float(u[i, 1]), self.cls_id, self.sep_id,
                          self.mlm.pad_token_id, f.get("word_start")) for i, f in enumerate(features)]
        ids = torch.tensor([r[0] for r in rows], dtype=torch.long)
        types = torch.tensor([r[1] for r in rows], dtype=torch.long)
        ws = torch.tensor([r[2] for r in rows], dtype=torch.long) if rows[0][2] is not None else None
        lengths = torch.tensor([r[3] for r in rows])
        order = torch.tensor([r[4] for r in rows], dtype=torch.long)
        return ids, types, ws, lengths, order

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if "length" not in features[0]:
            raise DataError("objective.sentence_order needs document blocks: prepare the corpus with layout: documents")
        if "labels" in features[0]:  # a fixed validation set: already paired and masked
            batch = {k: torch.as_tensor([f[k] for f in features], dtype=torch.long)
                     for k in ("input_ids", "token_type_ids", "labels", "sentence_order_label")}
            lengths = torch.tensor([int(f["length"]) for f in features])
        else:
            indices = [int(f["idx"]) for f in features] if "idx" in features[0] else None
            ids, types, ws, lengths, order = self.pairs(features, indices)
            inputs, labels = self.mlm.mask(ids, ws, indices)
            batch = {"input_ids": inputs, "token_type_ids": types, "labels": labels, "sentence_order_label": order}
        batch["attention_mask"] = (torch.arange(batch["input_ids"].shape[1])[None, :] < lengths[:, None]).long()
        if not self.use_token_types:
            batch.pop("token_type_ids")
        return batch


@dataclass
class SentenceOrderOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (N, V): MLM logits on the masked positions
    order_logits: torch.Tensor | None = None  # (B, 2)
    order_labels: torch.Tensor | None = None  # (B,), echoed for the metrics
    mlm_loss: torch.Tensor | None = None
    order_loss: torch.Tensor | None = None


# model_type -> (encoder attribute, masked-LM head attributes applied in order)
_PARTS = {"bert": ("bert", ("cls",)), "roberta": ("roberta", ("lm_head",)), "modernbert": ("model", ("head", "decoder"))}


class MLMWithSentenceOrder(nn.Module):
    """A `*ForMaskedLM` (BERT, RoBERTa or ModernBERT) plus a sentence-order head on [CLS]; one encoder pass feeds
    both. ModernBERT has no token types: its pairs are told apart by the [SEP] between them alone."""

    def __init__(self, mlm_model, weight: float = 1.0):
        super().__init__()
        arch = mlm_model.config.model_type
        if arch not in _PARTS:
            raise ConfigError([f"objective.sentence_order: supported for model.arch {', '.join(_PARTS)}, not {arch}"])
        self.mlm = mlm_model
        self.encoder_attr, self.head_attrs = _PARTS[arch]
        H = mlm_model.config.hidden_size
        self.order_head = nn.Sequential(nn.Linear(H, H), nn.Tanh(), nn.Linear(H, 2))
        self.weight = weight
        self.config = mlm_model.config

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, sentence_order_label: torch.Tensor,
                attention_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None):
        from nlp_ssl.modeling import _sparse_output

        types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = getattr(self.mlm, self.encoder_attr)(input_ids=input_ids, attention_mask=attention_mask,
                                                      **types)[0]  # (B, T, H)
        mlm = _sparse_output(hidden, labels, self.lm_head)  # loss, logits (N, V)
        order_logits = self.order_head(hidden[:, 0])  # (B, 2)
        has = sentence_order_label != -100
        order_loss = F.cross_entropy(order_logits[has].float(), sentence_order_label[has]) if has.any() \
            else order_logits.sum() * 0.0
        return SentenceOrderOutput(loss=mlm.loss + self.weight * order_loss, logits=mlm.logits, order_logits=order_logits,
                                   order_labels=sentence_order_label, mlm_loss=mlm.loss, order_loss=order_loss)

    def lm_head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The masked-LM head of the wrapped model on selected states: (N, H) -> (N, V)."""
        for attr in self.head_attrs:
            hidden = getattr(self.mlm, attr)(hidden)
        return hidden

    def save_pretrained(self, save_directory: str, tokenizer=None, state_dict=None, **kwargs) -> None:
        """`state_dict`: the full weights gathered from sharded ranks (FSDP), else None (the modules' own)."""
        from safetensors.torch import save_file

        from nlp_ssl.distributed import substate

        self.mlm.save_pretrained(save_directory, state_dict=substate(state_dict, "mlm."))
        head = substate(state_dict, "order_head.") or self.order_head.state_dict()
        save_file({k: v.contiguous() for k, v in head.items()}, str(Path(save_directory) / HEAD_FILE))

    def load_checkpoint(self, directory: str) -> None:
        from safetensors.torch import load_file

        missing, unexpected = self.mlm.load_state_dict(load_file(str(Path(directory) / "model.safetensors")), strict=False)
        tied = set(getattr(self.mlm, "all_tied_weights_keys", {}) or {})
        if unexpected or set(missing) - tied:
            raise ValueError(f"{directory}: checkpoint does not match the model (missing {missing}, unexpected {unexpected})")
        self.mlm.tie_weights()
        self.order_head.load_state_dict(load_file(str(Path(directory) / HEAD_FILE)), strict=True)


def preprocess_logits(outputs, labels):
    """(MLM predictions aligned with labels (B, T), order predictions (B,), order labels (B,))."""
    logits, order_logits, order_labels = outputs[0], outputs[1], outputs[2]
    preds = torch.full_like(labels, -100)
    preds[labels != -100] = logits.argmax(-1)
    return preds, order_logits.argmax(-1), order_labels


def metrics(eval_pred) -> dict[str, float]:
    (preds, order_preds, order_labels), labels = eval_pred.predictions, eval_pred.label_ids
    masked, has = labels != -100, order_labels != -100
    return {"mlm_accuracy": float((preds[masked] == labels[masked]).mean()) if masked.any() else math.nan,
            "sentence_order_accuracy": float((order_preds[has] == order_labels[has]).mean()) if has.any() else math.nan}


def fixed_eval_set(blocks, collator: SentenceOrderCollator, n: int, seed: int):
    """The first `n` validation blocks paired and masked once (seeded), the same at every evaluation."""
    import datasets

    fixed = dataclasses.replace(collator, mlm=dataclasses.replace(collator.mlm, seed=seed), seed=seed)
    sub = blocks.select(range(min(n, len(blocks)))).with_format("numpy")
    rows: dict[str, list] = {k: [] for k in ("input_ids", "token_type_ids", "labels", "sentence_order_label", "length")}
    for i in range(0, len(sub), 256):
        part = sub[i:i + 256]
        feats = [{k: part[k][j] for k in part} | {"idx": i + j} for j in range(len(part["input_ids"]))]
        ids, types, ws, lengths, order = fixed.pairs(feats, [f["idx"] for f in feats])
        inputs, labels = fixed.mlm.mask(ids, ws, [f["idx"] for f in feats])
        for k, v in (("input_ids", inputs), ("token_type_ids", types), ("labels", labels),
                     ("sentence_order_label", order), ("length", lengths)):
            rows[k].extend(v.tolist())
    return datasets.Dataset.from_dict(rows)


def build(objective: ObjectiveConfig, model_cfg, tokenizer, blocks, *, seed: int = 0,
          eval_blocks: int = 1000) -> ObjectiveSetup:
    from nlp_ssl.modeling import build_mlm_model
    from nlp_ssl.objectives.mlm import check_whole_word, mlm_collator

    if "length" not in blocks["train"].column_names:
        raise DataError("objective.sentence_order needs document blocks: prepare the corpus again with layout: documents")
    whole_word = check_whole_word(objective, blocks)
    mlm_model = build_mlm_model(model_cfg, tokenizer, block_size_of(blocks))
    model = MLMWithSentenceOrder(mlm_model, objective.sentence_order_weight)
    collator = SentenceOrderCollator(mlm_collator(objective, tokenizer, seed), cls_id=tokenizer.cls_token_id,
                                     sep_id=tokenizer.sep_token_id, seed=seed,
                                     use_token_types=getattr(mlm_model.config, "type_vocab_size", 1) > 1)
    val = validation_split(blocks, eval_blocks)
    return ObjectiveSetup(
        model=model, config=mlm_model.config, collator=collator, artifact=ARTIFACT,
        columns=("input_ids", "length", "word_start") if whole_word else ("input_ids", "length"),
        eval_set=fixed_eval_set(val, collator, eval_blocks, seed + 1) if val is not None else None,
        metric_kwargs=dict(compute_metrics=metrics, preprocess_logits_for_metrics=preprocess_logits),
        describe=f"masked LM + sentence-order prediction (weight {objective.sentence_order_weight:g})")
