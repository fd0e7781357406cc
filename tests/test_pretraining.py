"""Pretraining components on hand-made blocks: loading checks, the fixed masked validation set, the objective,
TrainingArguments and the Trainer configured through its constructor."""

from __future__ import annotations

import pytest
import torch

from nlp_ssl.config import from_dict
from nlp_ssl.errors import ConfigError, DataError
from nlp_ssl.errors import ModelError
from nlp_ssl.pretraining import (PretrainConfig, build_trainer, check_ids_fit, load_blocks, setup_objective,
                                 tokenizer_path, training_arguments)

TINY = {"arch": "bert", "preset": "tiny", "num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64}


@pytest.fixture
def blocks(tiny_tokenizer_dir):
    import datasets

    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, len(tok), (40, 16), generator=g).tolist()
    return datasets.DatasetDict({"train": datasets.Dataset.from_dict({"input_ids": ids[:32]}),
                                 "validation": datasets.Dataset.from_dict({"input_ids": ids[32:]})}), tok


def cfg(tmp_path, objective=None, model=None, **train) -> PretrainConfig:
    t = {"per_device_train_batch_size": 4, "max_steps": 3, "eval_steps": 0, "save_steps": 0, "report_to": ["none"],
         "max_eval_samples": 6, **train}
    return from_dict(PretrainConfig, {"output_dir": str(tmp_path / "run"), "data": "blocks", "model": {**TINY, **(model or {})},
                                      "objective": objective or {}, "train": t})


def test_load_blocks_and_tokenizer_refuse_what_is_not_there(tmp_path):
    with pytest.raises(DataError, match="holds no prepared corpus; run `nlp-ssl prepare"):
        load_blocks(str(tmp_path))
    with pytest.raises(ConfigError, match="tokenizer: not given"):
        tokenizer_path(cfg(tmp_path), {})
    assert tokenizer_path(cfg(tmp_path), {"tokenizer": "tok"}) == "tok"


def test_check_ids_fit(blocks):
    dd, tok = blocks
    check_ids_fit(dd["train"], len(tok), "here")
    with pytest.raises(ModelError, match="holds token id .* prepared with another tokenizer"):
        check_ids_fit(dd["train"], 20, "here")


def test_setup_objective_checks_the_blocks(tmp_path, blocks):
    dd, tok = blocks
    mlm = setup_objective(cfg(tmp_path), tok, dd)
    assert len(mlm.eval_set) == 6 and "compute_metrics" in mlm.metric_kwargs
    again = setup_objective(cfg(tmp_path), tok, dd)  # initialised from train.seed
    key = next(iter(mlm.model.state_dict()))
    assert torch.equal(mlm.model.state_dict()[key], again.model.state_dict()[key])
    clm = setup_objective(cfg(tmp_path, objective={"task": "clm"}, model={"sparse_prediction": False}), tok, dd)
    assert clm.eval_set["input_ids"] == dd["validation"]["input_ids"][:6]
    with pytest.raises(DataError, match="no validation blocks"):
        setup_objective(cfg(tmp_path, eval_steps=5), tok, {"train": dd["train"]})
    with pytest.raises(ModelError, match="prepared with another tokenizer"):
        small = dd["train"].map(lambda b: {"input_ids": [[i + len(tok) for i in x] for x in b["input_ids"]]}, batched=True)
        setup_objective(cfg(tmp_path), tok, {"train": small, "validation": dd["validation"]})


def test_trainer_is_configured_through_its_constructor(tmp_path, blocks):
    dd, tok = blocks
    c = cfg(tmp_path, max_time_minutes=0.5, warmup_ratio=0.2, lr_scheduler_type="cosine", max_steps=-1)
    args = training_arguments(c)
    assert args.max_steps == 10**9 and args.output_dir == str(tmp_path / "run" / "checkpoints")  # the budget stops it
    assert training_arguments(cfg(tmp_path)).max_steps == 3
    # a token budget: 100 tokens at 4 blocks x 8 tokens a step -> ceil(3.125) = 4 steps
    assert training_arguments(cfg(tmp_path, max_steps=-1, max_tokens=100), block_size=8).max_steps == 4
    # accumulation counts: 100 tokens at 4 blocks x 2 micro-batches x 8 tokens an optimizer step -> 2 steps
    c2 = cfg(tmp_path, max_steps=-1, max_tokens=100, gradient_accumulation_steps=2)
    assert training_arguments(c2, block_size=8).max_steps == 2
    with pytest.raises(ValueError, match="needs the block size"):
        training_arguments(cfg(tmp_path, max_steps=-1, max_tokens=100))
    trainer = build_trainer(c, args, setup_objective(c, tok, dd), tok, dd["train"])
    assert trainer.time_budget.seconds == 30 and trainer.warmup_ratio == 0.2 and trainer.schedule == "cosine"
    plain = build_trainer(cfg(tmp_path), training_arguments(cfg(tmp_path)), setup_objective(cfg(tmp_path), tok, dd),
                          tok, dd["train"])
    assert plain.time_budget is None and plain.schedule == "linear"  # settings live on the instance, not the class
    assert trainer.time_budget is not None
    with pytest.raises(DataError, match="fewer than one global batch"):
        build_trainer(cfg(tmp_path, per_device_train_batch_size=64), training_arguments(cfg(tmp_path, per_device_train_batch_size=64)),
                      setup_objective(cfg(tmp_path), tok, dd), tok, dd["train"])


def test_trainer_progress_follows_the_budget_or_the_steps_not_the_trainers_step_bar(tmp_path, blocks, capsys,
                                                                                    monkeypatch):
    """Under a time budget the Trainer's own bar (10**9 steps) is replaced by one of the budget's seconds; a
    step-limited run shows its steps. Off a terminal: one plain line per log, with tokens seen and the loss."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    monkeypatch.setenv("NLP_SSL_PROGRESS", "lines")
    dd, tok = blocks
    c = cfg(tmp_path, max_time_minutes=0.5, max_steps=-1, logging_steps=1)
    trainer = build_trainer(c, training_arguments(c), setup_objective(c, tok, dd), tok, dd["train"])
    kinds = [type(cb).__name__ for cb in trainer.callback_handler.callbacks]
    assert "RunProgress" in kinds and ProgressCallback.__name__ not in kinds and PrinterCallback.__name__ not in kinds
    steps = cfg(tmp_path, max_steps=3, logging_steps=1)
    trainer = build_trainer(steps, training_arguments(steps), setup_objective(steps, tok, dd), tok, dd["train"])
    trainer.train()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert lines[0].startswith("step 1/3 (33.3%) | ") and " left | " in lines[0]
    assert f"| {4 * len(dd['train'][0]['input_ids'])} tokens | loss " in lines[0]  # 4 blocks per step
    assert len(lines) == 4 and "\r" not in err  # 3 training logs and the final summary, no bar


@pytest.mark.parametrize("kind", ["mlm", "sentence_order"])
def test_gradient_accumulation_trains_as_one_batch(tmp_path, kind):
    """2 micro-batches of 4 = one batch of 8 (same loss, same SGD step): the sparse MLM divides by the Trainer's
    label count over the accumulation window (num_items_in_batch), a wrapper objective (no **kwargs: the Trainer
    divides its mean loss by the steps). A wrapper whose forward took **kwargs would be summed, not averaged."""
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import BertConfig, TrainingArguments

    from nlp_ssl.modeling import _sparse_classes
    from nlp_ssl.objectives.sentence_order import MLMWithSentenceOrder
    from nlp_ssl.training import make_trainer_class

    rng = np.random.default_rng(0)
    ids = rng.integers(5, 50, (8, 10))
    labels = np.full((8, 10), -100)
    labels[:, [2, 5]] = ids[:, [2, 5]]
    ds = Dataset.from_dict({"input_ids": ids.tolist(), "labels": labels.tolist(),
                            "sentence_order_label": (np.arange(8) % 2).tolist()})

    def collate(rows):
        batch = {k: torch.tensor([r[k] for r in rows]) for k in ("input_ids", "labels")}
        if kind == "sentence_order":
            batch["sentence_order_label"] = torch.tensor([r["sentence_order_label"] for r in rows])
        return batch

    results = {}
    for steps, batch in ((1, 8), (2, 4)):
        torch.manual_seed(0)
        mlm = _sparse_classes()["bert"](BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1,
                                                   num_attention_heads=2, intermediate_size=64,
                                                   hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
        model = mlm if kind == "mlm" else MLMWithSentenceOrder(mlm)
        args = TrainingArguments(output_dir=str(tmp_path / str(steps)), per_device_train_batch_size=batch,
                                 gradient_accumulation_steps=steps, max_steps=1, learning_rate=0.5, optim="sgd",
                                 max_grad_norm=0.0, lr_scheduler_type="constant", report_to=[], use_cpu=True,
                                 save_strategy="no", remove_unused_columns=False, seed=0, disable_tqdm=True)
        out = make_trainer_class()(model=model, args=args, train_dataset=ds, data_collator=collate).train()
        results[steps] = (out.training_loss, [p.detach().clone() for p in model.parameters()])
    assert results[2][0] == pytest.approx(results[1][0], rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(results[1][1], results[2][1]))
