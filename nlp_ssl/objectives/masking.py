"""Choosing positions to mask (token, whole-word, span) and corrupting them (80/10/10), with explicit RNG.

All functions draw their randomness from an explicit `BatchRNG`, so a given seed gives the same masks on every
machine and the statistical properties (rate, split) are testable. `BatchRNG.per_example` seeds each row
from (seed, epoch, example index): masks then depend only on the example, not on how examples are batched
or split across data-parallel ranks, which is what makes a 2-process run reproduce a 1-process run.
Shapes: (B, T) for a batch of B blocks of T tokens.

Whole-word masking uses a per-token `word_start` flag computed from the tokenizer's word ids at preparation
time, so it works for any fast tokenizer (WordPiece `##`, sentencepiece `▁`, byte-level `Ġ` alike) without
looking at how sub-words are spelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

Strategy = Literal["token", "whole_word", "span"]


class BatchRNG:
    """Uniform and integer draws of shape (B, T), from one generator or from one generator per row."""

    def __init__(self, generators: list[torch.Generator] | torch.Generator):
        self.generators = generators

    @classmethod
    def sequential(cls, generator: torch.Generator) -> "BatchRNG":
        return cls(generator)

    @classmethod
    def per_example(cls, seed: int, epoch: int, indices: list[int]) -> "BatchRNG":
        # Distinct, reproducible streams per (seed, epoch, example); the multipliers only spread the bits.
        return cls([torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 2_147_483_647 + int(i) & (2**63 - 1))
                    for i in indices])

    def rand(self, shape: tuple[int, int]) -> torch.Tensor:
        if isinstance(self.generators, torch.Generator):
            return torch.rand(shape, generator=self.generators)
        return torch.stack([torch.rand(shape[1], generator=g) for g in self.generators])

    def randint(self, high: int, shape: tuple[int, int]) -> torch.Tensor:
        if isinstance(self.generators, torch.Generator):
            return torch.randint(high, shape, generator=self.generators)
        return torch.stack([torch.randint(high, (shape[1],), generator=g) for g in self.generators])


@dataclass
class MaskingConfig:
    """How masked-LM inputs are corrupted.

    Attributes:
        strategy: `token` (each token independently, BERT), `whole_word` (all sub-words of a chosen word),
            or `span` (contiguous spans with geometric lengths, SpanBERT), all at the same overall rate.
        mask_rate: expected share of (non-special) tokens that are predicted, in (0, 1).
        mask_token_fraction: of the predicted tokens, the share replaced by the mask token.
        random_token_fraction: of the predicted tokens, the share replaced by a random token (the rest stay).
        span_p: span lengths follow Geometric(span_p), clipped at span_max_length (SpanBERT: 0.2 and 10).
        span_max_length: longest span.
    """

    strategy: Strategy = "token"
    mask_rate: float = 0.15
    mask_token_fraction: float = 0.8
    random_token_fraction: float = 0.1
    span_p: float = 0.2
    span_max_length: int = 10

    def validate(self) -> list[str]:
        problems = []
        if not 0 < self.mask_rate < 1:
            problems.append(f"mask_rate: must be in (0, 1), got {self.mask_rate}")
        if not (0 <= self.mask_token_fraction <= 1 and 0 <= self.random_token_fraction <= 1):
            problems.append("mask_token_fraction, random_token_fraction: must each be in [0, 1]")
        elif self.mask_token_fraction + self.random_token_fraction > 1 + 1e-9:
            problems.append(f"mask_token_fraction + random_token_fraction: must be at most 1, got "
                            f"{self.mask_token_fraction + self.random_token_fraction}")
        if not 0 < self.span_p <= 1:
            problems.append(f"span_p: must be in (0, 1], got {self.span_p}")
        if self.span_max_length < 1:
            problems.append("span_max_length: must be at least 1")
        return problems


def token_mask(candidates: torch.Tensor, rate: float, rng: BatchRNG) -> torch.Tensor:
    """Each candidate position independently with probability `rate`. (B, T) bool -> (B, T) bool."""
    return (rng.rand(candidates.shape) < rate) & candidates


def whole_word_mask(candidates: torch.Tensor, word_start: torch.Tensor, rate: float, rng: BatchRNG) -> torch.Tensor:
    """Choose words with probability `rate` and mask all their tokens.

    Args:
        candidates: (B, T) bool, positions that may be masked (not special, not padding).
        word_start: (B, T) bool, True where a token begins a word. Tokens before the first start in a block
            (the tail of a word cut by packing) form word 0 of that block.
    """
    word_id = torch.cumsum(word_start.long(), dim=1)  # (B, T): index of the word each token belongs to
    chosen = rng.rand(candidates.shape) < rate  # (B, T): one draw per word index
    return torch.gather(chosen, 1, word_id.clamp(max=candidates.shape[1] - 1)) & candidates


def span_start_probability(rate: float, p: float, max_len: int) -> float:
    """Per-position start probability q so that spans of Geometric(p) length (clipped) cover `rate` of positions.

    A position is covered unless no span starting k positions earlier reaches it, for each k:
    P(covered) = 1 - prod_k (1 - q * P(len > k)). Solved for q by bisection, so overlapping spans do not
    lower the rate.
    """
    survive = [(1 - p) ** k for k in range(max_len)]  # P(len > k) for len ~ Geometric(p) on 1, 2, ...

    def coverage(q: float) -> float:
        return 1 - math.prod(1 - q * s for s in survive)

    lo, hi = 0.0, 1.0
    if coverage(hi) < rate:
        return 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if coverage(mid) < rate else (lo, mid)
    return (lo + hi) / 2


def span_mask(candidates: torch.Tensor, rate: float, p: float, max_len: int, rng: BatchRNG) -> torch.Tensor:
    """Contiguous spans with Geometric(p) lengths clipped at `max_len`, covering `rate` of positions on average."""
    B, T = candidates.shape
    q = span_start_probability(rate, p, max_len)
    starts = rng.rand((B, T)) < q  # (B, T)
    # Geometric(p) on {1, 2, ...} by inversion: ceil(log(U) / log(1 - p)).
    u = rng.rand((B, T)).clamp_min(1e-12)
    lengths = torch.ceil(torch.log(u) / math.log(1 - p)).clamp(1, max_len).long() if p < 1 else torch.ones((B, T), dtype=torch.long)
    # Covered if some start s <= t has s + len(s) > t: the running max of (s + len) over starts exceeds t.
    pos = torch.arange(T).expand(B, T)
    reach = torch.where(starts, pos + lengths, torch.zeros_like(pos))  # (B, T): end (exclusive) of a span starting here
    covered = torch.cummax(reach, dim=1).values > pos
    return covered & candidates


def corrupt(
    input_ids: torch.Tensor,
    masked: torch.Tensor,
    mask_token_id: int,
    random_ids: torch.Tensor,
    mask_token_fraction: float,
    random_token_fraction: float,
    rng: BatchRNG,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the 80/10/10 rule to masked positions; labels are the original ids there and -100 elsewhere.

    Args:
        input_ids: (B, T) token ids.
        masked: (B, T) bool, positions to predict.
        random_ids: 1-D tensor of ids a random replacement may take (the non-special vocabulary).
    Returns:
        (inputs, labels), both (B, T) long.
    """
    labels = torch.where(masked, input_ids, torch.full_like(input_ids, -100))
    u = rng.rand(input_ids.shape)
    to_mask = masked & (u < mask_token_fraction)
    to_random = masked & (u >= mask_token_fraction) & (u < mask_token_fraction + random_token_fraction)
    inputs = input_ids.clone()
    inputs[to_mask] = mask_token_id
    picks = rng.randint(len(random_ids), input_ids.shape)
    inputs[to_random] = random_ids[picks[to_random]]
    return inputs, labels
