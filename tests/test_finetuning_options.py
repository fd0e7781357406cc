"""Fine-tuning options for small encoders: layer-wise learning-rate decay (the optimizer's groups), the
learning-rate grid extended past an edge, and selection-split early stopping with a learning curve."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from nlp_ssl.finetuning import grid_extension, layer_depth, layerwise_param_groups, selection_early_stopping


def tiny_classifier():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2,
                                                    num_attention_heads=2, intermediate_size=64, num_labels=2))


def expected_rate(name: str, lr: float, d: float) -> float:
    if name.startswith("bert.embeddings."):
        return lr * d ** 3
    if name.startswith("bert.encoder.layer.0."):
        return lr * d ** 2
    if name.startswith("bert.encoder.layer.1."):
        return lr * d
    assert name.startswith(("bert.pooler.", "classifier.")), name
    return lr


def test_layer_depths():
    assert layer_depth("bert.embeddings.word_embeddings.weight", 2) == 0
    assert layer_depth("bert.encoder.layer.0.attention.self.query.weight", 2) == 1
    assert layer_depth("model.layers.11.mlp.Wi.weight", 12) == 12  # ModernBERT naming
    assert layer_depth("electra.embeddings_project.weight", 2) == 0
    assert layer_depth("qa_outputs.weight", 2) == 3


def test_param_groups_get_layerwise_rates_and_decay_only_on_weights():
    model = tiny_classifier()
    groups = layerwise_param_groups(model, lr=1e-3, decay=0.5, weight_decay=0.01)
    seen = {}
    for g in groups:
        for name in g["names"]:
            seen[name] = g
            assert g["lr"] == pytest.approx(expected_rate(name, 1e-3, 0.5))
            no_decay = name.endswith("bias") or "LayerNorm" in name
            assert g["weight_decay"] == (0.0 if no_decay else 0.01), name
    assert set(seen) == {n for n, _ in model.named_parameters()}


def test_trainer_optimizer_uses_the_layerwise_groups(tmp_path):
    from transformers import TrainingArguments

    from nlp_ssl.finetuning import with_layerwise_lr
    from nlp_ssl.training import make_trainer_class

    model = tiny_classifier()
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=2e-3, weight_decay=0.1, report_to=[], use_cpu=True)
    trainer = with_layerwise_lr(make_trainer_class(), 0.8)(model=model, args=args)
    opt = trainer.create_optimizer()
    rate = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    wd = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        assert rate[id(p)] == pytest.approx(expected_rate(name, 2e-3, 0.8)), name
    assert wd[id(model.classifier.weight)] == 0.1 and wd[id(model.classifier.bias)] == 0.0
    # and the schedule scales every group from its own rate
    trainer.create_scheduler(10, opt)
    assert sorted({round(g["initial_lr"], 12) for g in opt.param_groups}) == sorted(
        round(2e-3 * 0.8 ** k, 12) for k in range(4))


def test_grid_extension_one_step_beyond_the_edge():
    assert grid_extension({1e-4: 0.8, 3e-4: 0.82, 1e-3: 0.85}) == pytest.approx(1e-3 * 1e-3 / 3e-4)
    assert grid_extension({1e-4: 0.9, 3e-4: 0.82, 1e-3: 0.85}) == pytest.approx(1e-4 * 1e-4 / 3e-4)
    assert grid_extension({1e-4: 0.8, 3e-4: 0.9, 1e-3: 0.85}) is None
    assert grid_extension({1e-4: 0.8}) is None
    assert grid_extension({1e-4: math.nan, 3e-4: 0.5}) == pytest.approx(9e-4)


def test_early_stopping_keeps_the_best_weights_and_the_curve():
    model = torch.nn.Linear(2, 1)
    scores = iter([0.1, 0.4, 0.3, 0.35, 0.9])
    weights_at = {}

    def evaluate(m):
        s = next(scores)
        weights_at[s] = m.weight.detach().clone()
        return {"f1": s, "exact": s / 2}

    cb = selection_early_stopping(evaluate, "f1", every=2, patience=2)
    control = SimpleNamespace(should_training_stop=False)
    for step in range(1, 11):
        with torch.no_grad():
            model.weight.add_(1.0)  # "training"
        cb.on_step_end(None, SimpleNamespace(global_step=step), control, model=model)
        if control.should_training_stop:
            break
    assert step == 8  # evaluations at 2, 4 (best), 6, 8: two without a new best
    assert [p["step"] for p in cb.curve] == [2, 4, 6, 8] and cb.curve[1] == {"step": 4, "f1": 0.4, "exact": 0.2}
    cb.on_train_end(None, SimpleNamespace(global_step=8), control, model=model)
    assert cb.best_step == 4 and torch.equal(model.weight, weights_at[0.4])


def test_extend_lr_grid_in_finetune(tmp_path, tiny_encoder_dir, data_dir):
    from nlp_ssl.config import from_dict
    from nlp_ssl.recipes.finetune import FinetuneConfig, main

    task = {"preset": "sst2", "max_length": 32, "train": {"path": "glue/sst2/train.tsv", "max_examples": 100},
            "eval": {"dev": {"path": "glue/sst2/dev.tsv", "max_examples": 50}}}
    cfg = from_dict(FinetuneConfig, {"output_dir": str(tmp_path / "run"), "model": str(tiny_encoder_dir), "task": task,
                                     "max_train_samples": 32, "train": {
                                         "learning_rate": [1e-4, 1e-3], "max_steps": 2, "per_device_train_batch_size": 16,
                                         "logging_steps": 1000, "extend_lr_grid": True, "layer_lr_decay": 0.8}})
    summary = main(cfg, data_dir)
    grid = {float(k): v for k, v in summary["selection"]["grid"].items()}
    assert len(grid) == 3  # two rates: the best is always at an edge -> one more
    extra = (set(grid) - {1e-4, 1e-3}).pop()
    assert extra == pytest.approx(1e-2) or extra == pytest.approx(1e-5)
    assert summary["selection"]["best_learning_rate"] == max(grid, key=grid.get)


def test_qa_trains_until_the_selection_metric_stops_rising(tmp_path, tiny_encoder_dir, data_dir):
    from nlp_ssl.cli import build_config

    dev = Path(data_dir) / "qa/squad/dev-v1.1-half-a.json"
    data = json.loads(dev.read_text())
    art = data["data"][0]
    small = tmp_path / "dev.json"
    small.write_text(json.dumps({"version": "1.1", "data": [{"title": art["title"], "paragraphs": art["paragraphs"][:2]}]}))
    raw = {"output_dir": str(tmp_path / "qa"), "model": str(tiny_encoder_dir),
           "task": {"type": "extractive_qa", "preset": "squad", "max_length": 96, "doc_stride": 32, "max_query_length": 24,
                    "train": {"path": "qa/squadshifts/new_wiki_v1.0.json", "max_examples": 100},
                    "eval": {"dev": {"path": str(small)}}},
           "train": {"learning_rate": [1e-3], "max_steps": 6, "per_device_train_batch_size": 16, "logging_steps": 1000,
                     "eval_steps": 2}}
    cfg, finetune = build_config("finetune", raw)  # extractive QA: the QA recipe
    metrics = finetune(cfg, data_dir)
    curve = json.loads((tmp_path / "qa" / "learning_curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [2, 4, 6] and curve["metric"] == "f1"
    best = max(curve["points"], key=lambda p: p["f1"])
    assert curve["best_step"] == best["step"] == metrics["best_step"]
    # the saved model is the best one: scoring it again gives the best point of the curve
    assert metrics["eval"]["dev"]["f1"] == pytest.approx(best["f1"])


def test_mean_pooling_is_recorded_where_the_saved_head_applies_it(tmp_path, tiny_tokenizer_dir, tiny_encoder_dir,
                                                                  data_dir):
    from nlp_ssl.config import from_dict
    from nlp_ssl.errors import ConfigError
    from nlp_ssl.finetuning import classifier_pooling
    from nlp_ssl.modeling import ModelConfig, build_mlm_model
    from nlp_ssl.recipes.finetune import FinetuneConfig, main
    from nlp_ssl.tokenization import load_tokenizer

    assert classifier_pooling("modernbert", "cls") == {"classifier_pooling": "cls"}
    assert classifier_pooling("bert", "cls") == {}
    with pytest.raises(ConfigError, match="pooling: mean"):
        classifier_pooling("electra", "mean")

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    torch.manual_seed(0)
    enc = build_mlm_model(ModelConfig(arch="modernbert", num_layers=1, hidden_size=32, num_heads=2, intermediate_size=64,
                                      max_position_embeddings=128), tok)
    enc_dir = tmp_path / "modernbert"
    enc.save_pretrained(str(enc_dir))
    tok.save_pretrained(str(enc_dir))
    task = {"preset": "sst2", "max_length": 32, "train": {"path": "glue/sst2/train.tsv", "max_examples": 64},
            "eval": {"dev": {"path": "glue/sst2/dev.tsv", "max_examples": 32}}}

    def cfg(model, name):
        return from_dict(FinetuneConfig, {"output_dir": str(tmp_path / name), "model": str(model), "task": task,
                                          "pooling": "mean", "train": {"learning_rate": [1e-3], "max_steps": 1,
                                                                       "per_device_train_batch_size": 16, "logging_steps": 100}})

    main(cfg(enc_dir, "mean"), data_dir)
    saved = json.loads((tmp_path / "mean" / "config.json").read_text())
    assert saved["classifier_pooling"] == "mean" and saved["architectures"] == ["ModernBertForSequenceClassification"]
    with pytest.raises(ConfigError, match="reads \\[CLS\\] only"):
        main(cfg(tiny_encoder_dir, "bert-mean"), data_dir)
    assert not (tmp_path / "bert-mean").exists()
