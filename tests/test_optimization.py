"""The one optimisation config and the one TrainingArguments builder of `pretrain` and `finetune`: the same
warm-up and scheduler mapping in both, every field the builder sets guarded in the pass-through, the speed-only
`impl` section reaching the Trainer, and what the Trainer would refuse answered before any data is read."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from nlp_ssl.config import from_dict
from nlp_ssl.errors import ConfigError
from nlp_ssl.optimization import (FinetuneTrainConfig, ImplConfig, OptimizationConfig, TrainConfig,
                                  trainer_option_problems, training_arguments)

REPO = Path(__file__).resolve().parent.parent


def _pretrain_config(tmp_path, **train):
    from nlp_ssl.pretraining import PretrainConfig

    return from_dict(PretrainConfig, {"output_dir": str(tmp_path / "run"), "data": "blocks",
                                      "train": {"max_steps": 10, "report_to": ["none"], **train}})


def test_pretrain_and_finetune_build_their_arguments_through_the_one_builder(tmp_path, monkeypatch):
    """Both commands map `constant` to the Trainer's constant_with_warmup and give warmup_ratio 0.1 as
    warmup_steps 0.1 (a ratio of the run in transformers 5), through `optimization.training_arguments`."""
    import nlp_ssl.optimization as optimization
    from nlp_ssl.pretraining import training_arguments as pretrain_arguments

    calls = []
    real = optimization.training_arguments

    def spy(output_dir, train, impl, **kw):
        calls.append(type(train).__name__)
        return real(output_dir, train, impl, **kw)

    monkeypatch.setattr(optimization, "training_arguments", spy)
    pre = pretrain_arguments(_pretrain_config(tmp_path, lr_scheduler_type="constant", warmup_ratio=0.1))
    fine = optimization.training_arguments(tmp_path / "ft", FinetuneTrainConfig(lr_scheduler_type="constant",
                                                                                warmup_ratio=0.1),
                                           ImplConfig(), seed=1, cuda_available=False)
    assert calls == ["TrainConfig", "FinetuneTrainConfig"]
    for args in (pre, fine):
        assert (args.lr_scheduler_type.value, args.warmup_steps) == ("constant_with_warmup", 0.1)
    # a ratio, not steps: the Trainer's 10-step run warms up for one step
    assert pre.get_warmup_steps(10) == 1
    for kind in ("linear", "cosine"):  # the others are the Trainer's own names
        assert real(tmp_path, TrainConfig(lr_scheduler_type=kind), ImplConfig(), seed=0).lr_scheduler_type.value == kind


def test_no_other_module_builds_training_arguments():
    """The warm-up and scheduler mappings live in one place: nothing else in nlp_ssl constructs TrainingArguments."""
    builders = [str(p.relative_to(REPO)) for p in sorted((REPO / "nlp_ssl").rglob("*.py"))
                if re.search(r"\bTrainingArguments\(", p.read_text(encoding="utf-8"))]
    assert builders == ["nlp_ssl/optimization.py"]


@pytest.mark.parametrize("cls", [TrainConfig, FinetuneTrainConfig])
def test_every_field_the_builder_sets_is_refused_in_the_pass_through(tmp_path, cls):
    """`train.training_args` may only add fields: each one the builder sets (shared, the command's own, or at
    run time) names the key that sets it, so a pass-through can never silently lose to nlp-ssl or collide."""
    set_by_builder = set(training_arguments(tmp_path, cls(), ImplConfig(), seed=0, label_names=["x"]).to_dict())
    from transformers import TrainingArguments

    defaults = TrainingArguments(output_dir=str(tmp_path), use_cpu=True).to_dict()
    changed = {k for k, v in training_arguments(tmp_path, cls(save_steps=5), ImplConfig(gradient_checkpointing=True,
                                                                                       dataloader_num_workers=1),
                                                seed=3, label_names=["x"]).to_dict().items()
               if v != defaults.get(k)} & set_by_builder
    unguarded = changed - set(cls.project_args())
    assert not unguarded, f"{cls.__name__}: the builder sets {sorted(unguarded)} without guarding them"
    problems = trainer_option_problems(cls(training_args={"seed": 1, "torch_compile": True}), cuda_available=False)
    seed_key = "train.seed" if cls is TrainConfig else "seed"
    assert problems == [f"train.training_args.seed: set by nlp-ssl; use {seed_key}",
                        "train.training_args.torch_compile: set by nlp-ssl; use impl.torch_compile"]


def test_the_shared_keys_keep_each_commands_defaults():
    """One base, each command's defaults as before (figures depend on them); fine-tuning's AdamW keys are the
    Trainer's own defaults, so moving them out of `training_args` changes no run."""
    from transformers import TrainingArguments

    trainer = TrainingArguments(output_dir="unused", use_cpu=True)
    pre, fine = TrainConfig(), FinetuneTrainConfig()
    assert (pre.per_device_train_batch_size, pre.learning_rate, pre.warmup_ratio, pre.adam_beta2, pre.adam_epsilon,
            pre.eval_steps, pre.save_steps, pre.report_to) == (64, 1e-3, 0.06, 0.98, 1e-6, 500, 500, ["tensorboard"])
    assert (fine.per_device_train_batch_size, fine.learning_rate, fine.warmup_ratio, fine.num_train_epochs,
            fine.per_device_eval_batch_size, fine.eval_steps, fine.save_steps, fine.report_to) == (
        32, 1e-4, 0.1, 3.0, 256, 0, 0, [])
    assert (fine.adam_beta1, fine.adam_beta2, fine.adam_epsilon) == (trainer.adam_beta1, trainer.adam_beta2,
                                                                     trainer.adam_epsilon)
    assert pre.optim == fine.optim == trainer.optim.value
    assert isinstance(pre, OptimizationConfig) and isinstance(fine, OptimizationConfig)


def test_pretraining_arguments_follow_the_config(tmp_path):
    from nlp_ssl.pretraining import training_arguments as pretrain_arguments

    c = _pretrain_config(tmp_path, eval_steps=4, save_steps=0, seed=7, training_args={"label_smoothing_factor": 0.1})
    c.impl = ImplConfig(torch_compile=True, dataloader_num_workers=2, gradient_checkpointing=True)
    args = pretrain_arguments(c)
    assert (args.eval_strategy.value, args.eval_steps, args.save_strategy.value, args.seed, args.data_seed) == (
        "steps", 4, "no", 7, 7)
    assert (args.torch_compile, args.dataloader_num_workers, args.activation_checkpointing) == (True, 2, True)
    assert (args.per_device_eval_batch_size, args.adam_beta2, args.label_smoothing_factor) == (128, 0.98, 0.1)
    assert args.output_dir == str(tmp_path / "run" / "checkpoints") and args.logging_first_step


def test_pretraining_refuses_what_the_trainer_would_before_reading_data(tmp_path, capsys):
    """fp16 without a GPU and a misspelled pass-through answer as a config error naming both, no data read."""
    from nlp_ssl.cli import main as cli

    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"output_dir: {tmp_path / 'out'}\ndata: {tmp_path / 'no-data'}\n"
                   "train: {fp16: true, max_steps: 5, training_args: {label_smothing_factor: 0.1}}\n")
    if torch.cuda.is_available():
        pytest.skip("fp16 is allowed on a GPU")
    assert cli(["pretrain", str(cfg)]) == 3
    err = capsys.readouterr().err
    assert "train.fp16: float16 training needs a CUDA GPU" in err
    assert "train.training_args.label_smothing_factor: not a TrainingArguments field; did you mean " \
           "'label_smoothing_factor'?" in err


def test_gradient_checkpointing_is_refused_for_a_wrapper_objective(tmp_path):
    """A pretraining wrapper of several models (ELECTRA, SimCSE, ...) has no checkpointing switch the Trainer
    could call: a config error naming the key, not an AttributeError at the first step."""
    from nlp_ssl.pretraining import build_trainer, training_arguments as pretrain_arguments

    c = _pretrain_config(tmp_path, per_device_train_batch_size=2, eval_steps=0)
    c.impl = ImplConfig(gradient_checkpointing=True)
    wrapper = SimpleNamespace(model=torch.nn.Linear(2, 2), collator=None)
    with pytest.raises(ConfigError, match=r"impl.gradient_checkpointing: the mlm objective trains Linear, a wrapper"):
        build_trainer(c, pretrain_arguments(c), wrapper, None, [{"input_ids": [0] * 8}] * 4)


def test_impl_threads_apply_to_the_process(monkeypatch):
    from nlp_ssl.optimization import apply_impl

    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    apply_impl(ImplConfig())
    apply_impl(ImplConfig(num_threads=2))
    assert seen == [2]
    with pytest.raises(ConfigError, match="num_threads: must be at least 1, or null"):
        from_dict(ImplConfig, {"num_threads": 0})
