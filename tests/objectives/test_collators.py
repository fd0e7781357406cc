"""Collators: exact outputs on hand-written inputs, and statistics on large batches (within a few sigma)."""

from __future__ import annotations

import math

import pytest
import torch

from nlp_ssl.config import from_dict
from nlp_ssl.errors import ConfigError, DataError
from nlp_ssl.objectives.collators import CausalLMCollator, MLMCollator
from nlp_ssl.objectives.masking import BatchRNG, MaskingConfig, span_mask, span_start_probability, whole_word_mask

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
V = 1000


def collator(**kw) -> MLMCollator:
    seed = kw.pop("seed", 0)
    return MLMCollator(mask_token_id=MASK, pad_token_id=PAD, special_ids=[PAD, UNK, CLS, SEP, MASK], vocab_size=V,
                       masking=MaskingConfig(**kw), seed=seed)


def big_batch(B=256, T=128, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (B, T), generator=g)
    ids[:, 0] = CLS
    ids[:, T // 2] = SEP
    return ids


def sigma(p, n):
    return math.sqrt(p * (1 - p) / n)


def test_exact_output_with_all_mask_and_all_keep():
    ids = [[CLS, 10, 11, 12, SEP, 13, 14, SEP]]
    # mask everything that may be masked, always with [MASK]
    b = collator(mask_rate=0.999999, mask_token_fraction=1.0, random_token_fraction=0.0)([{"input_ids": ids[0]}])
    assert b["input_ids"].tolist() == [[CLS, MASK, MASK, MASK, SEP, MASK, MASK, SEP]]
    assert b["labels"].tolist() == [[-100, 10, 11, 12, -100, 13, 14, -100]]
    assert "attention_mask" not in b  # packed blocks of equal length need none
    # the 0/0/100 split keeps the tokens but still predicts them
    b = collator(mask_rate=0.999999, mask_token_fraction=0.0, random_token_fraction=0.0)([{"input_ids": ids[0]}])
    assert b["input_ids"].tolist() == ids and b["labels"].tolist() == [[-100, 10, 11, 12, -100, 13, 14, -100]]


def test_same_seed_same_masks_and_padding_never_masked():
    feats = [{"input_ids": [CLS, 7, 8, 9, SEP]}, {"input_ids": [CLS, 7, SEP]}]
    a, b = collator(seed=5, mask_rate=0.5)(feats), collator(seed=5, mask_rate=0.5)(feats)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert a["input_ids"][1, 3:].tolist() == [PAD, PAD] and a["labels"][1, 3:].tolist() == [-100, -100]


def test_per_example_masks_do_not_depend_on_batching():
    """With `idx`, an example is masked the same whether it comes in one batch of 4 or two batches of 2."""
    ids = big_batch(B=4, T=32).tolist()
    feats = [{"input_ids": x, "idx": 100 + i} for i, x in enumerate(ids)]
    c = collator(mask_rate=0.3, seed=9)
    whole = c(feats)
    halves = [c(feats[:2]), c(feats[2:])]
    for k in ("input_ids", "labels"):
        assert torch.equal(whole[k], torch.cat([h[k] for h in halves]))
    c.epoch = 1  # a new epoch draws new masks
    assert not torch.equal(c(feats)["labels"], whole["labels"])


def test_prelabelled_examples_pass_through():
    feats = [{"input_ids": [CLS, MASK, 9, SEP], "labels": [-100, 8, -100, -100]}]
    b = collator()(feats)
    assert b["input_ids"].tolist() == [[CLS, MASK, 9, SEP]] and b["labels"].tolist() == [[-100, 8, -100, -100]]


@pytest.mark.parametrize("rate", [0.15, 0.4])
@pytest.mark.parametrize("strategy", ["token", "span"])
def test_rate_and_80_10_10_split_statistics(rate, strategy):
    ids = big_batch()
    inputs, labels = collator(strategy=strategy, mask_rate=rate, seed=3).mask(ids)
    special = (ids == CLS) | (ids == SEP)
    assert (labels[special] == -100).all() and torch.equal(inputs[special], ids[special])
    n = int((~special).sum())
    predicted = labels != -100
    observed = predicted.sum().item() / n
    # spans make masks correlated, so allow a wider band for them
    tol = 5 * sigma(rate, n) * (1 if strategy == "token" else 4)
    assert abs(observed - rate) < tol, (observed, rate)
    assert torch.equal(labels[predicted], ids[predicted])
    k = int(predicted.sum())
    to_mask = (inputs[predicted] == MASK).float().mean().item()
    unchanged = (inputs[predicted] == ids[predicted]).float().mean().item()
    assert abs(to_mask - 0.8) < 5 * sigma(0.8, k)
    assert abs(unchanged - (0.1 + 0.1 / (V - 5))) < 5 * sigma(0.1, k)  # kept, or replaced by itself
    random = inputs[predicted & (inputs != MASK) & (inputs != ids)]
    assert ((random >= 5) & (random < V)).all()  # random replacements are never special tokens
    assert torch.equal(inputs[~predicted], ids[~predicted])


def test_whole_word_masks_all_subwords_of_a_word_and_keeps_rate():
    ids = big_batch(B=256, T=128)
    g = torch.Generator().manual_seed(0)
    word_start = torch.rand(ids.shape, generator=g) < 0.6  # words of 1-4+ sub-words
    word_start[:, 0] = True
    inputs, labels = collator(strategy="whole_word", mask_rate=0.15, seed=1).mask(ids, word_start)
    predicted = labels != -100
    word_id = torch.cumsum(word_start.long(), 1)
    special = (ids == CLS) | (ids == SEP)
    # within each word, all non-special sub-words share one decision
    for b in range(8):
        for w in torch.unique(word_id[b]).tolist():
            sel = (word_id[b] == w) & ~special[b]
            if sel.any():
                assert predicted[b][sel].all() or not predicted[b][sel].any()
    n = int((~special).sum())
    assert abs(predicted.sum().item() / n - 0.15) < 0.02


def test_whole_word_on_hand_written_words():
    ids = torch.tensor([[CLS, 10, 11, 12, 13, 14, SEP]])
    ws = torch.tensor([[1, 1, 0, 0, 1, 1, 1]], dtype=torch.bool)  # words: [10 11 12] [13] [14]
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        m = whole_word_mask(~((ids == CLS) | (ids == SEP)), ws, 0.5, BatchRNG.sequential(g))[0].tolist()
        assert m[1] == m[2] == m[3] and not m[0] and not m[6]
        seen.add(tuple(m))
    assert len(seen) == 8  # all 2^3 word choices occur


def test_whole_word_needs_word_starts():
    with pytest.raises(DataError, match="word_starts: true"):
        collator(strategy="whole_word")([{"input_ids": [CLS, 7, SEP]}])


def test_span_lengths_are_geometric_and_contiguous():
    g = torch.Generator().manual_seed(0)
    cand = torch.ones(2000, 200, dtype=torch.bool)
    m = span_mask(cand, 0.15, 0.2, 10, BatchRNG.sequential(g))
    # run lengths of masked stretches: mean of Geometric(0.2) clipped at 10 is about 3.8; merged runs are longer
    x = torch.nn.functional.pad(m.int(), (1, 1))
    d = x[:, 1:] - x[:, :-1]
    starts = (d == 1).nonzero()[:, 1]
    ends = (d == -1).nonzero()[:, 1]
    mean_run = (ends - starts).float().mean().item()
    assert 3.5 < mean_run < 6.0
    assert abs(m.float().mean().item() - 0.15) < 0.005
    assert 0 < span_start_probability(0.15, 0.2, 10) < 0.15 / 3.5


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_mask_rate_outside_open_interval_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="mask_rate: must be in \\(0, 1\\)"):
        from_dict(MaskingConfig, {"mask_rate": bad})
    with pytest.raises(ConfigError, match="must be at most 1"):
        from_dict(MaskingConfig, {"mask_token_fraction": 0.9, "random_token_fraction": 0.2})


def test_causal_labels_are_inputs_unshifted_and_model_shifts_exactly_once():
    from transformers import BertConfig, BertLMHeadModel

    c = CausalLMCollator(pad_token_id=PAD)
    b = c([{"input_ids": [CLS, 7, 8, 9]}, {"input_ids": [CLS, 7]}])
    assert b["labels"].tolist() == [[CLS, 7, 8, 9], [CLS, 7, -100, -100]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    torch.manual_seed(0)
    model = BertLMHeadModel(BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32, is_decoder=True)).eval()
    out = model(**b)
    logits = out.logits  # (B, T, V); position t predicts token t + 1
    manual = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 20), b["labels"][:, 1:].reshape(-1),
                                               ignore_index=-100)
    assert torch.allclose(out.loss, manual, atol=1e-6)
