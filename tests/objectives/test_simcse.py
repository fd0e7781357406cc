"""SimCSE: the loss on hand-made vectors, the two dropout views, pooling, sentence units, zero-shot STS."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nlp_ssl.objectives.simcse import SentenceCollator, SimCSEModel, info_nce, pool
from nlp_ssl.tasks.sts import cosine_rows


def test_info_nce_by_hand():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    loss, sim = info_nce(z1, z2, temperature=0.5)
    c = 1 / math.sqrt(2)
    assert sim.flatten().tolist() == pytest.approx([2.0, 2 * c, 0.0, 2 * c])
    row0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(2 * c)))
    row1 = -math.log(math.exp(2 * c) / (1 + math.exp(2 * c)))
    assert loss.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_pooling_cls_and_mean_over_real_tokens():
    h = torch.arange(12, dtype=torch.float).reshape(1, 3, 4).repeat(2, 1, 1)  # (2, 3, 4)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert pool(h, mask, "cls").tolist() == [[0, 1, 2, 3]] * 2
    assert pool(h, mask, "mean").tolist() == [[4, 5, 6, 7], [2, 3, 4, 5]]


def test_sentence_units_are_the_longest_separator_free_stretch():
    c = SentenceCollator(cls_id=2, sep_id=3, pad_id=0, max_length=5)
    batch = c([{"input_ids": [2, 10, 11, 3, 12, 13, 14, 15, 16]},   # [CLS] a b [SEP] c d e f g -> c d e (cut)
               {"input_ids": [2, 20, 3, 21, 22, 3, 0, 0, 0], "length": 6}])
    assert batch["input_ids"].tolist() == [[2, 12, 13, 14, 3], [2, 21, 22, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert batch["labels"].tolist() == [0, 1]


def tiny_encoder(dropout=0.1):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=64, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout),
                     add_pooling_layer=False)


def test_two_views_differ_only_by_dropout_and_the_loss_trains_the_encoder():
    m = SimCSEModel(tiny_encoder(), "cls_mlp", 0.05)
    ids = torch.randint(5, 40, (4, 8))
    both = torch.cat([ids, ids])
    m.train()
    z = m.embed(both)
    assert not torch.allclose(z[:4], z[4:])  # dropout makes two views
    m.eval()
    z = m.embed(both)
    assert torch.allclose(z[:4], z[4:])
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    for _ in range(3):
        out = m(ids, labels=torch.arange(4))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert out.similarities.shape == (4, 4)
    moved = [k for k, v in m.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("encoder.") for k in moved) and any(k.startswith("mlp.") for k in moved)
    assert m.config.sentence_pooling == "cls"


def test_save_and_resume_round_trip(tmp_path):
    m = SimCSEModel(tiny_encoder(), "cls_mlp")
    m.save_pretrained(str(tmp_path))
    other = SimCSEModel(tiny_encoder(), "cls_mlp")
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1)
    other.load_checkpoint(str(tmp_path))
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), other.state_dict().values()))


def test_cosine_rows():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = np.array([[2.0, 0.0], [-1.0, -1.0], [1.0, 0.0]])
    assert cosine_rows(a, b).tolist() == pytest.approx([1.0, -1.0, 0.0])


def test_sts_zero_shot_through_evaluate(tiny_encoder_dir, data_dir, tmp_path):
    from nlp_ssl.cli import main

    assert main(["evaluate", str(tiny_encoder_dir), "task.type=sts_zero_shot", "task.pooling=mean",
                 f"output_dir={tmp_path}", "--data-dir", data_dir]) == 0
    import json

    m = json.loads((tmp_path / "metrics.json").read_text())
    dev = m["eval"]["dev"]
    assert m["pooling"] == "mean" and dev["pairs"] == 1500 and -1 <= dev["spearmanr"] <= 1
    assert list(m["eval"]) == ["dev"]  # not the selection split that the stsb preset carves from train


def test_embed_takes_any_encoder_including_modernbert(tiny_tokenizer_dir):
    from transformers import AutoModel

    from nlp_ssl.modeling import ModelConfig, hf_config
    from nlp_ssl.tasks.sts import embed
    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    torch.manual_seed(0)
    model = AutoModel.from_config(hf_config(ModelConfig(arch="modernbert", num_layers=1, hidden_size=32, num_heads=2,
                                                        intermediate_size=64, max_position_embeddings=64), tok))
    texts = ["a short one", "a somewhat longer sentence about a city", "a short one"]
    v = embed(model, tok, texts, "mean", batch_size=2)
    assert v.shape == (3, 32) and np.allclose(v[0], v[2], atol=1e-5)  # same text, same vector, whatever the batch
