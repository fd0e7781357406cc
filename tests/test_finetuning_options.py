"""Fine-tuning options for small encoders: layer-wise learning-rate decay (the optimizer's groups), the
learning-rate grid extended past an edge, and selection-split early stopping with a learning curve."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import numpy as np
import torch

from nlp_ssl.optimization import layer_depth, layerwise_param_groups
from nlp_ssl.selection import grid_extension
from nlp_ssl.tasks.train import selection_early_stopping


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

    from nlp_ssl.optimization import with_layerwise_lr
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

    task = {"preset": "sst2", "held_out_unit": "example", "max_length": 32, "train": {"path": "glue/sst2/train.tsv", "max_examples": 100},
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
                     "eval_steps": 2, "save_steps": 3}}  # checkpoints carry the curve and best weights so far
    cfg, finetune = build_config("finetune", raw)  # extractive QA: the QA recipe
    metrics = finetune(cfg, data_dir)
    curve = json.loads((tmp_path / "qa" / "learning_curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [2, 4, 6] and curve["metric"] == "f1"
    best = max(curve["points"], key=lambda p: p["f1"])
    assert curve["best_step"] == best["step"] == metrics["best_step"]
    # the saved model is the best one: scoring it again gives the best point of the curve
    assert metrics["eval"]["dev"]["f1"] == pytest.approx(best["f1"])
    assert not (tmp_path / "qa" / "checkpoints").exists()  # spent once the run is saved


def test_mean_pooling_is_recorded_where_the_saved_head_applies_it(tmp_path, tiny_tokenizer_dir, tiny_encoder_dir,
                                                                  data_dir):
    from nlp_ssl.config import from_dict
    from nlp_ssl.errors import ConfigError
    from nlp_ssl.tasks.models import classifier_pooling
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
    task = {"preset": "sst2", "held_out_unit": "example", "max_length": 32, "train": {"path": "glue/sst2/train.tsv", "max_examples": 64},
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


# ---- the Trainer's everyday options, the validated pass-through, evaluation's device and precision ----------


def test_trainer_options_reach_the_training_arguments(tmp_path):
    from nlp_ssl.optimization import FinetuneTrainConfig, ImplConfig, training_arguments

    cfg = FinetuneTrainConfig(gradient_accumulation_steps=4, fp16=True, optim="adafactor", save_steps=7,
                              save_total_limit=3, adam_beta2=0.98, training_args={"label_smoothing_factor": 0.1})
    impl = ImplConfig(gradient_checkpointing=True, torch_compile=True, dataloader_num_workers=2)
    args = training_arguments(str(tmp_path), cfg, impl, seed=5, learning_rate=3e-4, checkpoints=True,
                              cuda_available=True)
    assert (args.gradient_accumulation_steps, args.fp16, args.activation_checkpointing, args.torch_compile,
            args.dataloader_num_workers, args.optim.value) == (4, True, True, True, 2, "adafactor")
    assert (args.save_strategy.value, args.save_steps, args.save_total_limit) == ("steps", 7, 3)
    assert (args.label_smoothing_factor, args.adam_beta2, args.learning_rate, args.seed) == (0.1, 0.98, 3e-4, 5)
    assert not args.use_cpu
    plain = training_arguments(str(tmp_path), FinetuneTrainConfig(save_steps=7), ImplConfig(), seed=1,
                               learning_rate=1e-3, checkpoints=False, cuda_available=False)
    assert plain.save_strategy.value == "no" and plain.use_cpu  # checkpoints only where the run keeps them


def test_training_args_pass_through_is_validated_and_every_problem_reported_at_once():
    from nlp_ssl.config import from_dict
    from nlp_ssl.optimization import FinetuneTrainConfig, trainer_option_problems

    cfg = from_dict(FinetuneTrainConfig, {"optim": "adamw_torhc", "fp16": True, "training_args": {
        "label_smothing_factor": 0.1, "learning_rate": 1e-3, "gradient_checkpointing": True, "use_cpu": True,
        "eval_accumulation_steps": "x", "neftune_noise_alpha": 5.0, "adam_beta2": 0.98}})
    problems = trainer_option_problems(cfg, cuda_available=False)
    assert problems == [
        "train.training_args.label_smothing_factor: not a TrainingArguments field; did you mean 'label_smoothing_factor'?",
        "train.training_args.learning_rate: set by nlp-ssl; use train.learning_rate",
        "train.training_args.gradient_checkpointing: set by nlp-ssl; use impl.gradient_checkpointing",
        "train.training_args.use_cpu: set by nlp-ssl; chosen from the hardware: a CUDA GPU when present",
        "train.training_args.eval_accumulation_steps: expected int | null, got 'x'",
        "train.training_args.adam_beta2: set by nlp-ssl; use train.adam_beta2",
        "train.optim: unknown optimizer 'adamw_torhc'; did you mean 'adamw_torch'? (e.g. adamw_torch, "
        "adamw_torch_fused, adafactor, sgd)",
        "train.fp16: float16 training needs a CUDA GPU and none is available; on CPU use train.bf16=true (or neither)"]
    # fp16 is refused on CPU only: with a GPU (mocked) the same option is fine
    assert trainer_option_problems(FinetuneTrainConfig(fp16=True), cuda_available=True) == []
    with pytest.raises(Exception, match="fp16 and bf16: choose one"):
        from_dict(FinetuneTrainConfig, {"fp16": True, "bf16": True})
    with pytest.raises(Exception, match="metric_for_best_model: pick the best weights of a learning curve; set eval_steps"):
        from_dict(FinetuneTrainConfig, {"metric_for_best_model": "loss"})


def test_fp16_on_cpu_is_refused_before_any_data_is_loaded(tmp_path, tiny_encoder_dir, monkeypatch, capsys):
    from nlp_ssl.cli import main as cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"output_dir: {tmp_path / 'out'}\nmodel: {tiny_encoder_dir}\ntask: {{preset: sst2}}\n"
                   "train: {fp16: true, training_args: {warmup_ratio: 0.2}}\n")
    assert cli(["finetune", str(cfg), "--data-dir", str(tmp_path / "no-data")]) == 3  # a config error, no data read
    err = capsys.readouterr().err
    assert "train.fp16: float16 training needs a CUDA GPU" in err
    assert "train.training_args.warmup_ratio: set by nlp-ssl; use train.warmup_ratio" in err


def test_loss_like_best_metric_is_minimised():
    from nlp_ssl.optimization import FinetuneTrainConfig

    assert FinetuneTrainConfig(eval_steps=1, metric_for_best_model="loss").best_is_greater() is False
    assert FinetuneTrainConfig(eval_steps=1, metric_for_best_model="accuracy").best_is_greater() is True
    assert FinetuneTrainConfig(eval_steps=1, metric_for_best_model="loss", greater_is_better=True).best_is_greater()
    model = torch.nn.Linear(2, 1)
    losses = iter([0.9, 0.5, 0.7])
    cb = selection_early_stopping(lambda m: {"loss": next(losses)}, "loss", every=1, greater_is_better=False)
    control = SimpleNamespace(should_training_stop=False)
    for step in (1, 2, 3):
        cb.on_step_end(None, SimpleNamespace(global_step=step), control, model=model)
    assert (cb.best_step, cb.best) == (2, 0.5)


def test_selection_state_survives_a_checkpoint(tmp_path):
    model = torch.nn.Linear(2, 1)
    scores = iter([0.3, 0.7, 0.5])
    cb = selection_early_stopping(lambda m: {"f1": next(scores)}, "f1", every=1, patience=3)
    control = SimpleNamespace(should_training_stop=False)
    for step in (1, 2):
        with torch.no_grad():
            model.weight.add_(1.0)
        cb.on_step_end(None, SimpleNamespace(global_step=step), control, model=model)
    best_weight = model.weight.detach().clone()
    cb.save_to_checkpoint(tmp_path)
    with torch.no_grad():
        model.weight.add_(1.0)
    again = selection_early_stopping(lambda m: {"f1": next(scores)}, "f1", every=1, patience=3)
    again.restore(tmp_path)
    assert (again.curve, again.best, again.best_step, again.since_best) == (cb.curve, 0.7, 2, 0)
    again.on_step_end(None, SimpleNamespace(global_step=3), control, model=model)
    again.finish(model, 3)
    assert torch.equal(model.weight, best_weight) and [p["step"] for p in again.curve] == [1, 2, 3]


def test_evaluation_runs_on_the_gpu_when_there_is_one(monkeypatch, tmp_path):
    from nlp_ssl.tasks.inference import autocast_dtype, eval_device, precision_of

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert eval_device() == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")  # the second rank of `accelerate launch` on two GPUs
    assert eval_device() == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert eval_device().type == "cpu"
    assert (autocast_dtype(True, False), autocast_dtype(False, True), autocast_dtype(False, False)) == (
        torch.bfloat16, torch.float16, None)
    (tmp_path / "config.yaml").write_text("train:\n  bf16: true\n  fp16: false\n")
    assert precision_of(tmp_path) == (True, False) and precision_of(tmp_path / "none") == (False, False)


def test_prediction_uses_autocast_as_training_did():
    from datasets import Dataset

    from nlp_ssl.tasks.inference import predict

    model = tiny_classifier()
    seen = []
    model.classifier.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    ds = Dataset.from_dict({"input_ids": [[2, 5, 6, 3], [2, 7, 3]], "length": [4, 3]})

    def collate(rows):
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.tensor([r["input_ids"] + [0] * (width - len(r["input_ids"])) for r in rows])
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}

    fp32, _ = predict(model, ds, collate, 8)
    bf16, _ = predict(model, ds, collate, 8, dtype=torch.bfloat16)
    assert seen == [torch.float32, torch.bfloat16]
    assert fp32["logits"].dtype == bf16["logits"].dtype == np.float32  # returned as float32 either way
    assert np.allclose(fp32["logits"], bf16["logits"], atol=0.05)
    predict(model, ds, collate, 8, dtype=torch.float16)  # float16 autocast is for GPUs: fp32 on the CPU
    assert seen[-1] == torch.float32


def test_gradient_accumulation_averages_the_micro_batches(tmp_path, tiny_tokenizer_dir):
    """Two micro-batches of 8 train as one batch of 16: the same loss (the mean, not the sum) and gradient."""
    from datasets import Dataset

    from nlp_ssl.optimization import FinetuneTrainConfig, ImplConfig, training_arguments
    from nlp_ssl.tasks.train import train

    rng = np.random.default_rng(0)
    ids = [[2, *rng.integers(5, 50, 6).tolist(), 3] for _ in range(16)]
    ds = Dataset.from_dict({"input_ids": ids, "labels": [i % 2 for i in range(16)], "length": [8] * 16})

    def collate(rows):
        return {"input_ids": torch.tensor([r["input_ids"] for r in rows]),
                "labels": torch.tensor([r["labels"] for r in rows])}

    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    results = {}
    for accumulation, batch in ((1, 16), (2, 8)):
        from transformers import BertConfig, BertForSequenceClassification

        torch.manual_seed(0)
        model = BertForSequenceClassification(BertConfig(
            vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))  # no dropout: comparable
        cfg = FinetuneTrainConfig(per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation,
                                  max_steps=1, warmup_ratio=0.0, group_by_length=False, report_to=[], dropout=0.0,
                                  max_grad_norm=0.0, optim="sgd", lr_scheduler_type="constant")
        args = training_arguments(str(tmp_path / str(accumulation)), cfg, ImplConfig(), seed=1, learning_rate=0.5,
                                  checkpoints=False, cuda_available=False)
        trainer, stats = train(model, args, ds, collate, tok)
        results[accumulation] = (stats["train_loss"], model.classifier.weight.detach().clone())
    assert results[2][0] == pytest.approx(results[1][0], rel=1e-4)  # ~ln 2, not twice it
    assert torch.allclose(results[2][1], results[1][1], atol=1e-5)  # one SGD step on the same mean gradient


def test_default_optimizer_is_the_trainers_own_so_earlier_figures_reproduce(tmp_path):
    """Every fine-tuning figure before train.optim existed ran with the Trainer's default optimizer (fused AdamW
    on torch >= 2.8). A different default (unfused `adamw_torch`) gives other weights from the same seed (issue
    15: the README's IMDB 100-label protocol, 14 steps from scratch, differed in the trained weights), so a
    figure re-run at its commit's seed would be a different run."""
    from transformers import TrainingArguments

    from nlp_ssl.config import read_yaml
    from nlp_ssl.optimization import FinetuneTrainConfig

    trainer_default = TrainingArguments(output_dir=str(tmp_path), use_cpu=True).optim.value
    assert FinetuneTrainConfig().optim == trainer_default
    configs = Path(__file__).resolve().parent.parent / "configs"
    shipped = {str(p.relative_to(configs)): (read_yaml(p).get("train") or {}).get("optim")
               for p in sorted(configs.rglob("*.yaml")) if "\n  optim:" in p.read_text()}
    assert shipped and set(shipped.values()) == {trainer_default}, shipped
