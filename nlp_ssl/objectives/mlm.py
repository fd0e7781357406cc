"""Masked language modelling (BERT): the encoder's `*ForMaskedLM` with a sparse head, the masking collator, a
validation set masked once, and masked-token accuracy.

Example:
    >>> setup = build(ObjectiveConfig(task="mlm"), ModelConfig(), tokenizer, blocks)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses

from nlp_ssl.artifact import Artifact
from nlp_ssl.errors import DataError
from nlp_ssl.objectives.registry import ObjectiveConfig, ObjectiveSetup, block_size_of, validation_split

# What the run saves: a stock `*ForMaskedLM` checkpoint (the sparse training head saves in the stock layout).
ARTIFACT = Artifact("AutoModelForMaskedLM", "fill-mask",
                    "a masked-language model: the encoder with its token-prediction head")


def masked_eval_set(blocks, collator, n: int, seed: int):
    """The first `n` validation blocks masked once (seeded), so every evaluation scores the same predictions."""
    import datasets
    import torch

    fixed = dataclasses.replace(collator, seed=seed)  # same settings, its own fixed seed
    sub = blocks.select(range(min(n, len(blocks)))).with_format("numpy")
    ids, labels = [], []
    for i in range(0, len(sub), 256):
        batch = sub[i:i + 256]
        ws = torch.as_tensor(batch["word_start"]) if "word_start" in batch else None
        x, y = fixed.mask(torch.as_tensor(batch["input_ids"], dtype=torch.long), ws)
        ids.append(x)
        labels.append(y)
    data = {"input_ids": torch.cat(ids).tolist(), "labels": torch.cat(labels).tolist()}
    if "length" in sub.column_names:  # document-layout blocks: their real length makes the attention mask
        data["length"] = [int(n) for n in sub["length"]]
    return datasets.Dataset.from_dict(data)


def check_whole_word(objective: ObjectiveConfig, blocks, where: str = "the prepared data") -> bool:
    """True when masking is whole-word; then the blocks must carry `word_start`."""
    whole_word = objective.masking.strategy == "whole_word"
    if whole_word and "word_start" not in blocks["train"].column_names:
        raise DataError(f"objective.masking.strategy: whole_word needs word boundaries, and {where} has none; "
                        "prepare it again with word_starts: true")
    return whole_word


def block_columns(whole_word: bool) -> tuple[str, ...]:
    """Columns an MLM-style collator reads (`length` exists only in document-layout corpora)."""
    return ("input_ids", "length", "word_start") if whole_word else ("input_ids", "length")


def mlm_collator(objective: ObjectiveConfig, tokenizer, seed: int):
    from nlp_ssl.objectives.collators import MLMCollator

    return MLMCollator.from_tokenizer(tokenizer, objective.masking, seed=seed)


def build(objective: ObjectiveConfig, model_cfg, tokenizer, blocks, *, seed: int = 0,
          eval_blocks: int = 1000) -> ObjectiveSetup:
    from nlp_ssl.modeling import build_mlm_model
    from nlp_ssl.training import mlm_metrics, mlm_preprocess_logits

    whole_word = check_whole_word(objective, blocks)
    model = build_mlm_model(model_cfg, tokenizer, block_size_of(blocks))
    collator = mlm_collator(objective, tokenizer, seed)
    val = validation_split(blocks, eval_blocks)
    eval_set = masked_eval_set(val, collator, eval_blocks, seed + 1) if val is not None else None
    return ObjectiveSetup(model=model, config=model.config, collator=collator, artifact=ARTIFACT,
                          columns=block_columns(whole_word), eval_set=eval_set,
                          metric_kwargs=dict(compute_metrics=mlm_metrics, preprocess_logits_for_metrics=mlm_preprocess_logits),
                          describe="masked LM")
