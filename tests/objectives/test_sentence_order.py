"""Sentence-order prediction: exact pairs, swap statistics, the two loss terms, a collated batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nlp_ssl.objectives.collators import MLMCollator
from nlp_ssl.objectives.masking import MaskingConfig
from nlp_ssl.objectives.sentence_order import MLMWithSentenceOrder, SentenceOrderCollator, make_pair

CLS, SEP, PAD = 2, 3, 0


def test_pairs_by_hand():
    block = [CLS, 10, 11, 12, 13, SEP, PAD, PAD]
    # split after 1 + floor(0.5 x 3) = 2 tokens; u_swap >= 0.5 keeps the order
    assert make_pair(block, 6, 0.9, 0.5, CLS, SEP, PAD) == (
        [CLS, 10, 11, SEP, 12, 13, SEP, PAD], [0, 0, 0, 0, 1, 1, 1, 0], None, 7, 0)
    assert make_pair(block, 6, 0.1, 0.5, CLS, SEP, PAD) == (
        [CLS, 12, 13, SEP, 10, 11, SEP, PAD], [0, 0, 0, 0, 1, 1, 1, 0], None, 7, 1)
    assert make_pair(block, 6, 0.1, 0.0, CLS, SEP, PAD)[0][:7] == [CLS, 11, 12, 13, SEP, 10, SEP]  # smallest B first
    assert make_pair(block, 6, 0.9, 0.999, CLS, SEP, PAD)[0][:7] == [CLS, 10, 11, 12, SEP, 13, SEP]
    # one token: nothing to order
    assert make_pair([CLS, 10, SEP, PAD, PAD], 3, 0.1, 0.5, CLS, SEP, PAD) == (
        [CLS, 10, SEP, PAD, PAD], [0] * 5, None, 3, -100)
    # word starts travel with their tokens; each segment starts a word
    ws = make_pair(block, 6, 0.1, 0.5, CLS, SEP, PAD, word_start=[1, 1, 0, 0, 1, 1, 0, 0])[2]
    assert ws == [1, 1, 1, 1, 1, 0, 1, 0]


def collator(seed=0):
    mlm = MLMCollator(mask_token_id=4, pad_token_id=PAD, special_ids=[0, 1, 2, 3, 4], vocab_size=100,
                      masking=MaskingConfig(mask_rate=0.15), seed=seed)
    return SentenceOrderCollator(mlm, cls_id=CLS, sep_id=SEP, seed=seed)


def test_collated_batch_masks_only_text_and_swaps_half():
    rng = np.random.default_rng(0)
    feats = []
    for i in range(2000):
        n = int(rng.integers(4, 12))  # at most 11 tokens: a 14-wide document block (3 slots reserved)
        ids = [CLS] + rng.integers(10, 100, size=n).tolist() + [SEP] + [PAD] * (12 - n)
        feats.append({"input_ids": np.array(ids), "length": n + 2, "idx": i})
    batch = collator()(feats)
    assert batch["input_ids"].shape == (2000, 14) and batch["token_type_ids"].shape == (2000, 14)
    lengths = torch.tensor([f["length"] + 1 for f in feats])  # one more separator
    assert torch.equal(batch["attention_mask"].sum(1), lengths)
    labels, order = batch["labels"], batch["sentence_order_label"]
    assert abs(order.float().mean().item() - 0.5) < 0.05  # ~4.5 sigma
    masked = labels != -100
    special = torch.isin(torch.where(masked, labels, torch.tensor(10)), torch.tensor([0, 1, 2, 3, 4]))
    assert not special.any() and 0.1 < masked.sum() / (lengths - 3).sum() < 0.2
    again = collator()(feats[:5])
    assert torch.equal(again["sentence_order_label"], order[:5])  # per-example seeding: batching does not matter


def test_loss_is_mlm_plus_weighted_order_cross_entropy():
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    mlm = BertForMaskedLM(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    m = MLMWithSentenceOrder(mlm, weight=2.0).eval()
    ids = torch.tensor([[CLS, 4, 11, SEP, 12, 13, SEP], [CLS, 20, 21, SEP, 4, 23, SEP]])
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1]] * 2)
    labels = torch.full_like(ids, -100)
    labels[0, 1], labels[1, 4] = 10, 22
    order = torch.tensor([1, -100])
    out = m(ids, labels, order, token_type_ids=types)
    ref_mlm = mlm(input_ids=ids, token_type_ids=types, labels=labels).loss  # stock dense loss
    ref_order = F.cross_entropy(out.order_logits[:1], order[:1])
    assert out.mlm_loss.item() == pytest.approx(ref_mlm.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(ref_mlm.item() + 2.0 * ref_order.item(), rel=1e-5)
    assert out.logits.shape == (2, 100)  # MLM head on the 2 masked positions only


def test_modernbert_order_loss_without_token_types():
    """ModernBERT (no token types): the loss is the MLM term (equal to the stock dense loss) + weight x order loss."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    torch.manual_seed(0)
    mlm = ModernBertForMaskedLM(ModernBertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
                                                 num_attention_heads=2, intermediate_size=64, pad_token_id=0,
                                                 global_attn_every_n_layers=1, sparse_prediction=False))
    m = MLMWithSentenceOrder(mlm, weight=0.5).eval()
    ids = torch.tensor([[CLS, 4, 11, SEP, 12, 13, SEP], [CLS, 20, 21, SEP, 4, 23, SEP]])
    labels = torch.full_like(ids, -100)
    labels[0, 1], labels[1, 4] = 10, 22
    order = torch.tensor([0, 1])
    out = m(ids, labels, order, attention_mask=torch.ones_like(ids))
    ref_mlm = mlm(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
    assert out.mlm_loss.item() == pytest.approx(ref_mlm.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(ref_mlm.item() + 0.5 * F.cross_entropy(out.order_logits, order).item(), rel=1e-5)
    assert out.logits.shape == (2, 100) and out.order_logits.shape == (2, 2)
