"""Pretext-task data collators over packed blocks: masked LM (token, whole-word, span) and next-token LM.

A collator turns a list of examples (dicts with `input_ids`, optionally `word_start` and `idx`, or already
`labels`) into a batch of tensors. Examples that carry their index (`idx`, as `PackedBlocks` yields them) are
masked from a generator seeded by (seed, epoch, idx), so masks do not depend on batching or on the number of
data-parallel ranks; without `idx` the collator's own seeded generator is used in call order.

Example:
    >>> collate = MLMCollator.from_tokenizer(tokenizer, MaskingConfig(mask_rate=0.3), seed=0)  # doctest: +SKIP
    >>> batch = collate([{"input_ids": [2, 45, 46, 3]}])                                       # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from nlp_ssl.errors import DataError, TokenizerError
from nlp_ssl.objectives.masking import BatchRNG, MaskingConfig, corrupt, span_mask, token_mask, whole_word_mask


def _valid(features: Sequence[dict], width: int) -> torch.Tensor:
    """(B, T) bool: True on real tokens, False on the right padding added by `_stack` or stored in the block
    (document-layout blocks carry their real `length`)."""
    lengths = torch.tensor([int(f["length"]) if "length" in f else len(f["input_ids"]) for f in features])
    return torch.arange(width)[None, :] < lengths[:, None]


def _padded(features: Sequence[dict], width: int) -> bool:
    """Whether a batch needs an attention mask: unequal lengths, or blocks that end in stored padding."""
    return "length" in features[0] or any(len(f["input_ids"]) != width for f in features)


def _stack(features: Sequence[dict], key: str, pad_value: int) -> torch.Tensor:
    """(B, T) long tensor from a list of equal- or unequal-length sequences, right-padded with pad_value."""
    rows = [torch.as_tensor(f[key], dtype=torch.long) for f in features]
    if all(len(r) == len(rows[0]) for r in rows):
        return torch.stack(rows)
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=pad_value)


@dataclass
class MLMCollator:
    """Masked-LM batches: `input_ids` corrupted, `labels` = original ids at predicted positions, -100 elsewhere.

    Never masks special tokens or padding. Examples that already carry `labels` (a pre-masked validation set)
    are passed through unchanged, so evaluation sees the same masks every time.
    """

    mask_token_id: int
    pad_token_id: int
    special_ids: list[int]
    vocab_size: int
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)
        self.epoch = 0  # set by the trainer at each epoch so per-example masks change between epochs
        special = torch.zeros(self.vocab_size, dtype=torch.bool)
        special[torch.tensor(sorted(set(self.special_ids)), dtype=torch.long)] = True
        self._special = special
        self._random_ids = torch.nonzero(~special).squeeze(1)  # random replacements never insert special tokens

    @classmethod
    def from_tokenizer(cls, tokenizer, masking: MaskingConfig, seed: int = 0) -> "MLMCollator":
        if tokenizer.mask_token_id is None:
            raise TokenizerError("masked LM needs a tokenizer with a mask token (tokenizer.mask_token is None)")
        return cls(mask_token_id=tokenizer.mask_token_id, pad_token_id=tokenizer.pad_token_id,
                   special_ids=list(tokenizer.all_special_ids), vocab_size=len(tokenizer), masking=masking, seed=seed)

    def mask(self, input_ids: torch.Tensor, word_start: torch.Tensor | None = None,
             indices: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) for a (B, T) batch of ids; per-example randomness when `indices` are given."""
        m = self.masking
        rng = BatchRNG.per_example(self.seed, self.epoch, indices) if indices is not None \
            else BatchRNG.sequential(self.generator)
        candidates = ~self._special[input_ids]  # (B, T): special and padding tokens are never predicted
        if m.strategy == "token":
            masked = token_mask(candidates, m.mask_rate, rng)
        elif m.strategy == "whole_word":
            if word_start is None:
                raise DataError("whole-word masking needs word boundaries: prepare the corpus with word_starts: true")
            masked = whole_word_mask(candidates, word_start.bool(), m.mask_rate, rng)
        else:
            masked = span_mask(candidates, m.mask_rate, m.span_p, m.span_max_length, rng)
        return corrupt(input_ids, masked, self.mask_token_id, self._random_ids,
                       m.mask_token_fraction, m.random_token_fraction, rng)

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        input_ids = _stack(features, "input_ids", self.pad_token_id)
        batch: dict[str, torch.Tensor] = {}
        if _padded(features, input_ids.shape[1]):  # packed stream blocks need no mask
            batch["attention_mask"] = _valid(features, input_ids.shape[1]).long()
        if "labels" in features[0]:
            batch["input_ids"], batch["labels"] = input_ids, _stack(features, "labels", -100)
            return batch
        word_start = _stack(features, "word_start", 0) if "word_start" in features[0] else None
        indices = [int(f["idx"]) for f in features] if "idx" in features[0] else None
        batch["input_ids"], batch["labels"] = self.mask(input_ids, word_start, indices)
        return batch


@dataclass
class CausalLMCollator:
    """Next-token LM batches: `labels` are the input ids themselves (padding -> -100).

    Not shifted here: Hugging Face causal-LM models shift labels inside their loss, so shifting in the
    collator too would train the model to predict two tokens ahead.
    """

    pad_token_id: int

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        input_ids = _stack(features, "input_ids", self.pad_token_id)
        valid = _valid(features, input_ids.shape[1])  # (B, T): False on padding
        labels = torch.where(valid, input_ids, torch.full_like(input_ids, -100))
        return {"input_ids": input_ids, "attention_mask": valid.long(), "labels": labels}
