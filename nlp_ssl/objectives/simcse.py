"""Unsupervised SimCSE (Gao et al., 2021): each sentence is encoded twice; the two encodings differ only by
their dropout masks and form a positive pair, and the other sentences of the batch are the negatives.

    x (B, T) --repeat--> (2B, T) --encoder (dropout on)--> pooled (2B, H) --> z1, z2 (B, H) each
    sim = cos(z1_i, z2_j) / temperature                      (B, B)
    loss = cross-entropy(sim, target = the diagonal)         (InfoNCE with in-batch negatives)

Pooling: `cls_mlp` trains on [CLS] through a dense+tanh layer and uses the bare [CLS] state afterwards (the
paper's unsupervised recipe); `mean` averages the token states (padding excluded) in both. Usually a stage after
masked-LM or ELECTRA pretraining (`model.init_from`: any saved encoder directory).

Text units: a sentence here is the longest separator-free stretch of a prepared block, cut to
`simcse.max_length` tokens and wrapped in [CLS] ... [SEP]. Prepare the corpus with a short block_size (32-64,
close to a sentence) and, ideally, `layout: documents` so units never join two documents.

Saved: the encoder alone (`AutoModel` loads it; `config.sentence_pooling` records `cls` or `mean`, which
`nlp-ssl evaluate MODEL task.type=sts_zero_shot` uses); the training MLP goes to `simcse_mlp.safetensors` for
resuming only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from nlp_ssl.artifact import Artifact
from nlp_ssl.objectives.registry import ObjectiveConfig, ObjectiveSetup, validation_split

MLP_FILE = "simcse_mlp.safetensors"
# What the run saves: the bare encoder. Its embeddings are token states to pool, which is what the
# feature-extraction pipeline returns ("sentence-similarity" is a sentence-transformers tag, not a transformers
# pipeline).
ARTIFACT = Artifact("AutoModel", "feature-extraction",
                    "a sentence encoder (SimCSE): the bare encoder; a sentence's embedding is the first token's last "
                    "hidden state or the mean of the token states, as config.sentence_pooling says (cls or mean), "
                    "never `pooler_output`, which is not trained")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, how: str) -> torch.Tensor:
    """(B, T, H) token states -> (B, H) sentence vectors: the first ([CLS]) state, or the mean over real tokens."""
    if how == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden.mean(1)
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, similarities (B, B)): cosine similarity of every pair over the temperature; row i's positive is i."""
    sim = F.cosine_similarity(z1.float().unsqueeze(1), z2.float().unsqueeze(0), dim=-1) / temperature  # (B, B)
    return F.cross_entropy(sim, torch.arange(len(sim), device=sim.device)), sim


@dataclass
class SimCSEOutput(ModelOutput):
    loss: torch.Tensor | None = None
    similarities: torch.Tensor | None = None  # (B, B)


class SimCSEModel(nn.Module):
    """An encoder (`AutoModel`) trained with the SimCSE loss.

    Args:
        encoder: a transformers base model (BertModel, ElectraModel, RobertaModel, ModernBertModel).
        pooling: `cls_mlp` or `mean`.
        temperature: of the similarities.
    """

    def __init__(self, encoder, pooling: str = "cls_mlp", temperature: float = 0.05):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.temperature = temperature
        H = encoder.config.hidden_size
        self.mlp = nn.Sequential(nn.Linear(H, H), nn.Tanh()) if pooling == "cls_mlp" else None
        self.config = encoder.config
        self.config.sentence_pooling = "cls" if pooling == "cls_mlp" else "mean"  # how to embed after training

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, train_head: bool = True):
        """(B, T) -> (B, H); the MLP applies in training (cls_mlp), not to the vectors used afterwards."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]  # (B, T, H)
        z = pool(hidden, attention_mask, "cls" if self.mlp is not None else "mean")
        return self.mlp(z) if self.mlp is not None and train_head else z

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> SimCSEOutput:
        """input_ids (B, T); labels (B,): the index of each sentence's positive, i.e. arange(B) (the collator
        sends them so that the Trainer computes an evaluation loss)."""
        B = input_ids.shape[0]
        both = torch.cat([input_ids, input_ids])  # (2B, T): one pass, two dropout masks
        mask = torch.cat([attention_mask, attention_mask]) if attention_mask is not None else None
        z = self.embed(both, mask)  # (2B, H)
        loss, sim = info_nce(z[:B], z[B:], self.temperature)
        return SimCSEOutput(loss=loss, similarities=sim)

    def save_pretrained(self, save_directory: str, tokenizer=None, state_dict=None, **kwargs) -> None:
        """`state_dict`: the full weights gathered from sharded ranks (FSDP), else None (the modules' own)."""
        from safetensors.torch import save_file

        from nlp_ssl.distributed import substate

        self.encoder.save_pretrained(save_directory, state_dict=substate(state_dict, "encoder."))
        if self.mlp is not None:
            mlp = substate(state_dict, "mlp.") or self.mlp.state_dict()
            save_file({k: v.contiguous() for k, v in mlp.items()}, str(Path(save_directory) / MLP_FILE))

    def load_checkpoint(self, directory: str) -> None:
        from safetensors.torch import load_file

        self.encoder.load_state_dict(load_file(str(Path(directory) / "model.safetensors")), strict=True)
        if self.mlp is not None:
            self.mlp.load_state_dict(load_file(str(Path(directory) / MLP_FILE)), strict=True)


@dataclass
class SentenceCollator:
    """Blocks -> sentences: the longest stretch without a separator (or padding), cut to `max_length - 2`
    tokens, as [CLS] tokens [SEP]; right-padded, with an attention mask. Deterministic."""

    cls_id: int
    sep_id: int
    pad_id: int
    max_length: int = 64
    special_ids: tuple[int, ...] = ()

    def unit(self, ids: Sequence[int]) -> list[int]:
        stops = {self.cls_id, self.sep_id, self.pad_id, *self.special_ids}
        best, cur = [], []
        for t in list(ids) + [self.sep_id]:
            if int(t) in stops:
                if len(cur) > len(best):
                    best = cur
                cur = []
            else:
                cur.append(int(t))
        return [self.cls_id] + best[: self.max_length - 2] + [self.sep_id]

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        units = [self.unit(f["input_ids"][: int(f["length"])] if "length" in f else f["input_ids"]) for f in features]
        width = max(len(u) for u in units)
        ids = torch.full((len(units), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(units), width), dtype=torch.long)
        for i, u in enumerate(units):
            ids[i, : len(u)] = torch.tensor(u)
            mask[i, : len(u)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.arange(len(units))}


_DROPOUT = {"modernbert": ("embedding_dropout", "mlp_dropout", "attention_dropout"),
            "default": ("hidden_dropout_prob", "attention_probs_dropout_prob")}


def build_encoder(model_cfg, tokenizer, dropout: float):
    """The encoder to train: `model.init_from` (any saved encoder; its head is dropped) or a fresh one."""
    from transformers import AutoConfig, AutoModel

    from nlp_ssl.modeling import check_vocab, hf_config

    init = None
    if model_cfg.init_from:
        from nlp_ssl.hub.inputs import local_path

        init = local_path(model_cfg.init_from, "model.init_from")  # a directory or a Hub id
        config = AutoConfig.from_pretrained(init)
    else:
        config = hf_config(model_cfg, tokenizer)
    for key in _DROPOUT.get(config.model_type, _DROPOUT["default"]):
        setattr(config, key, dropout)
    kw = {"add_pooling_layer": False} if config.model_type in ("bert", "roberta") else {}  # unused by SimCSE
    config._attn_implementation = model_cfg.attn_implementation
    if init:
        encoder = AutoModel.from_pretrained(init, config=config, **kw)
    else:
        encoder = AutoModel.from_config(config, **kw)
    check_vocab(encoder.config.vocab_size, tokenizer)
    return encoder


def retrieval_metrics(eval_pred) -> dict[str, float]:
    """Share of sentences whose own second view is the most similar in its batch. Dropout is off in evaluation,
    so the views are equal and this measures how distinct the sentence vectors are."""
    import numpy as np

    sims, labels = eval_pred.predictions, eval_pred.label_ids  # (N, B) padded with -100, (N,)
    return {"top1": float((np.asarray(sims).argmax(-1) == labels).mean()) if len(labels) else math.nan}


def build(objective: ObjectiveConfig, model_cfg, tokenizer, blocks, *, seed: int = 0,
          eval_blocks: int = 1000) -> ObjectiveSetup:
    s = objective.simcse
    encoder = build_encoder(model_cfg, tokenizer, s.dropout)
    model = SimCSEModel(encoder, s.pooling, s.temperature)
    collator = SentenceCollator(cls_id=tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id,
                                sep_id=tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id,
                                pad_id=tokenizer.pad_token_id, max_length=s.max_length,
                                special_ids=tuple(tokenizer.all_special_ids))
    return ObjectiveSetup(model=model, config=encoder.config, collator=collator, artifact=ARTIFACT,
                          eval_set=validation_split(blocks, eval_blocks), metric_kwargs={"compute_metrics": retrieval_metrics},
                          describe=f"SimCSE ({s.pooling}, temperature {s.temperature:g}, dropout {s.dropout:g})")
