"""Encoders from config: sizes, vocabulary from the tokenizer, sparse head = dense loss, standard artifacts."""

from __future__ import annotations

import json

import pytest
import torch

from nlp_ssl.config import from_dict
from nlp_ssl.errors import ConfigError
from nlp_ssl.modeling import PRESETS, ModelConfig, build_mlm_model, model_class


@pytest.fixture(scope="module")
def tok(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))


@pytest.mark.parametrize("arch", ["bert", "roberta", "modernbert"])
def test_sparse_head_gives_the_dense_loss_and_gradients(arch, tok):
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, preset="tiny", num_layers=1, hidden_size=32, num_heads=2, intermediate_size=64)
    sparse = build_mlm_model(cfg, tok).eval()
    dense = model_class(arch, sparse=False)(sparse.config)
    dense.load_state_dict(sparse.state_dict())
    if arch == "modernbert":
        dense.sparse_prediction = False
    dense.eval()
    ids = torch.randint(5, len(tok), (3, 20))
    labels = torch.full_like(ids, -100)
    labels[:, [2, 7, 11]] = ids[:, [2, 7, 11]]
    out_s, out_d = sparse(input_ids=ids, labels=labels), dense(input_ids=ids, labels=labels)
    assert out_s.logits.shape == (9, len(tok)) and out_d.logits.shape == (3, 20, len(tok))
    torch.testing.assert_close(out_s.loss, out_d.loss)
    out_s.loss.backward()
    out_d.loss.backward()
    for (n, a), (_, b) in zip(sparse.named_parameters(), dense.named_parameters()):
        if a.grad is not None or b.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, msg=n, rtol=1e-4, atol=1e-6)
    # without labels (inference, pipelines) the model is the stock one: dense logits everywhere
    assert sparse(input_ids=ids).logits.shape == (3, 20, len(tok))


def test_presets_and_vocab_from_tokenizer(tok):
    m = build_mlm_model(ModelConfig(preset="mini"), tok)
    c = m.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == PRESETS["mini"]
    assert c.vocab_size == len(tok) and c.pad_token_id == tok.pad_token_id
    assert type(m).__name__ == "BertForMaskedLM"


def test_saved_model_reads_as_the_stock_class(tmp_path, tok):
    build_mlm_model(ModelConfig(preset="tiny", num_layers=1), tok).save_pretrained(str(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    assert (tmp_path / "model.safetensors").exists()


def test_tokenizer_model_mismatch_and_positions(tmp_path, tok):
    from transformers import BertConfig, BertForMaskedLM

    BertForMaskedLM(BertConfig(vocab_size=len(tok) + 7, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64)).save_pretrained(str(tmp_path / "other"))
    with pytest.raises(ConfigError, match=r"vocabulary of 2007 but the tokenizer has 2000"):
        build_mlm_model(ModelConfig(init_from=str(tmp_path / "other")), tok)
    with pytest.raises(ConfigError, match="is a 'bert' model"):
        build_mlm_model(ModelConfig(arch="roberta", init_from=str(tmp_path / "other")), tok)
    with pytest.raises(ConfigError, match="exceed the model's 64 positions"):
        build_mlm_model(ModelConfig(max_position_embeddings=64), tok, block_size=128)
    # RoBERTa reserves two position slots but still takes max_position_embeddings tokens
    build_mlm_model(ModelConfig(arch="roberta", preset="tiny", num_layers=1, max_position_embeddings=64), tok, block_size=64)


def test_hidden_size_must_split_into_heads():
    with pytest.raises(ConfigError, match="divisible by num_heads"):
        from_dict(ModelConfig, {"hidden_size": 100, "num_heads": 3})


def test_trainer_adamw_decays_weights_but_not_norms_or_biases(tok, tmp_path):
    """The recipe relies on the Trainer's AdamW grouping: decoupled decay on weights, none on norms and biases."""
    from transformers import Trainer, TrainingArguments

    model = build_mlm_model(ModelConfig(preset="tiny", num_layers=1), tok)
    args = TrainingArguments(output_dir=str(tmp_path), weight_decay=0.01, report_to=[], use_cpu=True)
    opt = Trainer(model=model, args=args).create_optimizer()
    assert type(opt).__name__ == "AdamW"
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    plain = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert decayed and plain
    assert not any("LayerNorm" in n or n.endswith(".bias") for n in decayed)
    assert all("LayerNorm" in n or n.endswith(".bias") for n in plain)
    assert "bert.encoder.layer.0.attention.self.query.weight" in decayed


def test_roberta_has_the_token_types_of_the_tokenizer_s_sentence_pairs(tok):
    from transformers import RobertaForSequenceClassification

    from nlp_ssl.modeling import align_token_types, hf_config

    pair = tok(["the cat sat", "a dog"], ["on the mat", "ran home fast"], padding=True, return_tensors="pt")
    assert pair["token_type_ids"].max() == 1  # the default `bert` template marks the second sentence
    config = hf_config(ModelConfig(arch="roberta", num_layers=1, hidden_size=32, num_heads=2, intermediate_size=64), tok)
    assert config.type_vocab_size == 2  # before: 1, and the pair batch below raised an IndexError
    torch.manual_seed(0)
    assert RobertaForSequenceClassification(config)(**pair).logits.shape == (2, 2)
    # an encoder saved with one token type: fine-tuning aligns it, computing what it computed with types all 0
    config.type_vocab_size = 1
    old = RobertaForSequenceClassification(config).eval()
    with pytest.raises(IndexError):
        old(**pair)
    all_zero = old(input_ids=pair["input_ids"], attention_mask=pair["attention_mask"]).logits
    assert align_token_types(old, tok) and old.config.type_vocab_size == 2
    torch.testing.assert_close(old(**pair).logits, all_zero)
    assert not align_token_types(old, tok)  # already aligned
