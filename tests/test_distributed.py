"""Scale-out helpers: the FSDP wrap unit per architecture, the collective final save, sharded prediction."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nlp_ssl.distributed import configure_sharding, fsdp_layer_classes, gather_rows, shard_of, substate

SMALL = dict(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
             max_position_embeddings=32)


def tiny(arch: str):
    import transformers as tf

    if arch == "bert":
        return tf.BertForMaskedLM(tf.BertConfig(**SMALL))
    if arch == "roberta":
        return tf.RobertaForMaskedLM(tf.RobertaConfig(**SMALL, pad_token_id=1))
    if arch == "modernbert":
        return tf.ModernBertForMaskedLM(tf.ModernBertConfig(**SMALL, global_attn_every_n_layers=1, pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2))
    if arch == "electra":
        from nlp_ssl.objectives.electra import ElectraPretrainer

        disc = tf.ElectraForPreTraining(tf.ElectraConfig(**SMALL, embedding_size=16))
        gen = tf.ElectraForMaskedLM(tf.ElectraConfig(**{**SMALL, "hidden_size": 8, "intermediate_size": 16},
                                                     embedding_size=16))
        return ElectraPretrainer(gen, disc)
    raise ValueError(arch)


@pytest.mark.parametrize("arch,expected", [("bert", ["BertLayer"]), ("roberta", ["RobertaLayer"]),
                                           ("modernbert", ["ModernBertEncoderLayer"]), ("electra", ["ElectraLayer"])])
def test_fsdp_wraps_the_architectures_own_block_class(arch, expected):
    assert fsdp_layer_classes(tiny(arch)) == expected


def test_fsdp_wraps_our_sparse_prediction_subclass_by_its_stock_layer():
    from nlp_ssl.modeling import model_class
    import transformers as tf

    assert fsdp_layer_classes(model_class("bert", True)(tf.BertConfig(**SMALL))) == ["BertLayer"]


def fake_fsdp_trainer(model, named=None):
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    plugin = SimpleNamespace(auto_wrap_policy=transformer_auto_wrap_policy, transformer_cls_names_to_wrap=named)
    return SimpleNamespace(model=model, is_fsdp_enabled=True, is_deepspeed_enabled=False,
                           accelerator=SimpleNamespace(state=SimpleNamespace(fsdp_plugin=plugin)))


def test_configure_sharding_fills_in_the_layer_class_and_refuses_a_wrong_one():
    from nlp_ssl.errors import ConfigError

    t = fake_fsdp_trainer(tiny("roberta"))
    assert configure_sharding(t) == "fsdp"
    assert t.accelerator.state.fsdp_plugin.transformer_cls_names_to_wrap == ["RobertaLayer"]
    kept = fake_fsdp_trainer(tiny("roberta"), named=["RobertaLayer", "RobertaEmbeddings"])
    configure_sharding(kept)  # the user's choice, present in the model, stands
    assert kept.accelerator.state.fsdp_plugin.transformer_cls_names_to_wrap == ["RobertaLayer", "RobertaEmbeddings"]
    with pytest.raises(ConfigError, match=r"\['BertLayer'\] not in this RobertaForMaskedLM; its blocks are \['RobertaLayer'\]"):
        configure_sharding(fake_fsdp_trainer(tiny("roberta"), named=["BertLayer"]))


def test_fsdp_requested_on_cpu_is_said_to_run_as_ddp(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    said = []
    t = SimpleNamespace(model=tiny("bert"), is_fsdp_enabled=False, is_deepspeed_enabled=False)
    assert configure_sharding(t, log=said.append) == "single"
    assert len(said) == 1 and "plain data parallel" in said[0]
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    assert configure_sharding(t, log=said.append) == "single" and len(said) == 1


def test_substate():
    assert substate({"a.x": 1, "b.y": 2, "a.z.w": 3}, "a.") == {"x": 1, "z.w": 3}
    assert substate(None, "a.") is None


# ----------------------------------------------------------------------------------------------------------
# The collective final save


@pytest.fixture
def trainer_factory(tmp_path, tiny_tokenizer_dir):
    from transformers import Trainer, TrainingArguments

    from nlp_ssl.tokenization import load_tokenizer
    from nlp_ssl.training import make_trainer_class
    import transformers as tf

    tokenizer = load_tokenizer(str(tiny_tokenizer_dir))

    def make():
        torch.manual_seed(0)
        model = tf.BertForMaskedLM(tf.BertConfig(**{**SMALL, "vocab_size": len(tokenizer)}))
        args = TrainingArguments(output_dir=str(tmp_path / "ckpt"), report_to=[], use_cpu=True)
        return make_trainer_class()(model=model, args=args, processing_class=tokenizer), tokenizer

    return make


def test_final_save_under_sharding_gathers_on_every_rank_and_writes_the_gathered_weights(tmp_path, trainer_factory,
                                                                                         monkeypatch):
    """Under FSDP every rank must enter the gather (else it waits forever), and the saved weights are the gathered
    ones (the Trainer's own save_model writes none under SHARDED_STATE_DICT)."""
    from transformers import AutoModelForMaskedLM

    from nlp_ssl.checkpoints import save_final

    trainer, tokenizer = trainer_factory()
    # the gathered weights differ from the (local) module's, so the test sees which ones were written
    expected = {k: v.detach().clone() + 1.0 for k, v in trainer.model.state_dict().items()}
    calls = []

    def get_state_dict(model, unwrap=True):
        calls.append(model)
        return dict(expected) if rank0[0] else {}  # save_pretrained consumes the dict it is given  # FSDP2 with cpu_offload: the full dict on rank 0 only

    trainer.is_fsdp_enabled = True
    monkeypatch.setattr(trainer.accelerator, "get_state_dict", get_state_dict)
    monkeypatch.setattr(trainer, "save_model", lambda *a, **k: pytest.fail("save_model writes no weights under FSDP"))

    rank0 = [False]  # rank 1: takes part in the gather, writes nothing
    monkeypatch.setattr(trainer, "is_world_process_zero", lambda: rank0[0])
    assert save_final(trainer, tokenizer, tmp_path / "r1", {"steps": 0}) is False
    assert len(calls) == 1 and not (tmp_path / "r1").exists()

    rank0[0] = True
    assert save_final(trainer, tokenizer, tmp_path / "r0", {"steps": 0}) is True
    assert len(calls) == 2
    loaded = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "r0")).state_dict()
    assert set(loaded) == set(expected)
    for k, v in expected.items():
        assert torch.equal(loaded[k], v), k
    assert json.loads((tmp_path / "r0" / "metrics.json").read_text()) == {"steps": 0}


def test_final_save_without_sharding_gathers_nothing(tmp_path, trainer_factory, monkeypatch):
    from safetensors.torch import load_file

    from nlp_ssl.checkpoints import save_final

    trainer, tokenizer = trainer_factory()
    monkeypatch.setattr(trainer.accelerator, "get_state_dict", lambda *a, **k: pytest.fail("nothing to gather"))
    assert save_final(trainer, tokenizer, tmp_path / "out", {}) is True
    saved = load_file(str(tmp_path / "out" / "model.safetensors"))
    own = trainer.model.state_dict()
    assert all(torch.equal(saved[k], own[k]) for k in saved)


def test_the_pretrain_recipe_enters_the_final_save_on_every_rank():
    """The recipe must not guard save_final with a rank test (it did: rank 0 alone entered, and a sharded gather
    would have waited for the others forever)."""
    import inspect

    import nlp_ssl.recipes.pretrain as recipe

    src = inspect.getsource(recipe.main)
    before = src.split("save_final(trainer")[0].rsplit("\n", 2)[-2:]
    assert "is_world_process_zero" not in "".join(before) and "is_main_process" not in "".join(before)


# ----------------------------------------------------------------------------------------------------------
# Sharded prediction


def test_shards_are_disjoint_and_cover_every_example_once():
    order = np.array([4, 0, 3, 1, 2, 6, 5])
    shares = [shard_of(order, r, 3) for r in range(3)]
    assert [s.tolist() for s in shares] == [[4, 1, 5], [0, 2], [3, 6]]
    assert sorted(np.concatenate(shares).tolist()) == list(range(7))


def test_gather_rows_puts_each_row_at_its_example_index():
    # one process: rows of indices [2, 0, 1] land at positions 2, 0, 1
    out = gather_rows(np.array([2, 0, 1]), {"logits": ["c", "a", "b"], "other": [3, 1, 2]}, 3)
    assert out == {"logits": ["a", "b", "c"], "other": [1, 2, 3]}
    with pytest.raises(AssertionError, match="predicted by no rank"):
        gather_rows(np.array([2, 0]), {"logits": ["c", "a"]}, 3)


TWO_RANK_SCRIPT = '''
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import transformers as tf
from accelerate import Accelerator, PartialState
from accelerate.utils import DistributedType
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

sys.path.insert(0, sys.argv[3])
from two_rank_models import classifier, predict_set  # the test builds the same, in one process
from nlp_ssl.checkpoints import save_final
from nlp_ssl.distributed import fsdp_layer_classes
from nlp_ssl.tasks.inference import PadCollator, predict
from nlp_ssl.tokenization import load_tokenizer

state = PartialState(cpu=True)  # joins the gloo group of the two launched ranks (cpu=False would not)
torch.set_num_threads(1)
tok = load_tokenizer(sys.argv[1])
out = Path(sys.argv[2])

# 1. prediction shared by the ranks, gathered in dataset order on each
clf = classifier(tok)
seen = []  # the examples this rank's model was run on (its share, not the whole set)
clf.register_forward_pre_hook(lambda m, args, kw: seen.extend(kw["input_ids"][:, 0].tolist()) or None, with_kwargs=True)
logits = predict(clf, predict_set(tok), PadCollator(tok), batch_size=4)[0]["logits"]
np.save(out.parent / f"logits-{state.process_index}.npy", logits)

# 2. FSDP2 as accelerate applies it (fsdp2_prepare_model): each block its own unit, then the root
torch.manual_seed(0)
model = tf.BertForMaskedLM(tf.BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=32, max_position_embeddings=32))
mesh = init_device_mesh("cpu", (state.num_processes,))
blocks = fsdp_layer_classes(model)
for module in list(model.modules()):
    if type(module).__name__ in blocks:
        fully_shard(module, mesh=mesh)
fully_shard(model, mesh=mesh)
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
ids = torch.randint(5, len(tok), (4, 12), generator=torch.Generator().manual_seed(state.process_index))
for _ in range(3):
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    opt.zero_grad()
local = model.bert.encoder.layer[0].output.dense.weight.to_local().shape  # this rank's shard
full = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().clone()  # collective, for the check
        for k, v in model.state_dict().items()}
fsdp2 = SimpleNamespace(distributed_type=DistributedType.FSDP, is_fsdp2=True)


class ShardedTrainer:
    """The Trainer surface save_final uses, over a real FSDP2 model (accelerate turns FSDP on only on GPUs)."""
    is_fsdp_enabled, is_deepspeed_enabled = True, False
    model = model
    accelerator = SimpleNamespace(get_state_dict=lambda m, unwrap=True: Accelerator.get_state_dict(fsdp2, m))
    state = SimpleNamespace(log_history=[])

    def is_world_process_zero(self):
        return state.is_main_process

    def _save(self, output_dir, state_dict):  # what Trainer._save does with a gathered state dict
        model.save_pretrained(output_dir, state_dict=state_dict)


wrote = save_final(ShardedTrainer(), tok, out, {"steps": 3})
if wrote:
    torch.save(full, out / "full.pt")
print("RESULT", json.dumps({"rank": state.process_index, "wrote": wrote, "shard": list(local), "predicted": len(seen)}),
      flush=True)
'''

MODELS = '''
import torch
import transformers as tf
from datasets import Dataset


def classifier(tok):
    torch.manual_seed(0)
    return tf.BertForSequenceClassification(tf.BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                                                          num_attention_heads=2, intermediate_size=32, num_labels=3))


def predict_set(tok):
    texts = [" ".join(["word"] * (1 + (7 * i) % 23)) + f" number {i}" for i in range(37)]  # lengths vary; 37 is odd
    enc = tok(texts)
    return Dataset.from_dict({**enc, "length": [len(x) for x in enc["input_ids"]]})
'''


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, tiny_tokenizer_dir):
    """One `accelerate launch` of two CPU ranks (gloo) running TWO_RANK_SCRIPT: sharded prediction, then a
    real FSDP2-sharded model saved through `save_final`. -> (work dir, per-rank results)."""
    import os
    import re
    import socket
    import subprocess
    import sys

    work = tmp_path_factory.mktemp("two_ranks")
    (work / "two_rank_script.py").write_text(TWO_RANK_SCRIPT)
    (work / "two_rank_models.py").write_text(MODELS)
    repo = Path(__file__).resolve().parents[1]
    with socket.socket() as sock:  # a free port (closed again before the launch binds it)
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    r = subprocess.run([str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
                        str(repo / "configs/accelerate/cpu-2proc.yaml"), "--main_process_port", port,
                        str(work / "two_rank_script.py"), str(tiny_tokenizer_dir), str(work / "out"), str(work)],
                       capture_output=True, text=True, timeout=600, cwd=repo,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)})
    assert r.returncode == 0, r.stderr[-3000:]
    results = sorted((json.loads(m) for m in re.findall(r"RESULT (.*)", r.stdout)), key=lambda d: d["rank"])
    return work, results


@pytest.mark.slow  # one launch of two processes, shared with the FSDP2 test below (about 40 s on 2 idle cores)
def test_two_ranks_predict_the_same_as_one_process_in_dataset_order(two_ranks, tiny_tokenizer_dir, monkeypatch):
    """`predict` under two CPU ranks: each rank predicts its share (disjoint, of the length-sorted examples; 37
    examples: one rank has one more), and the gathered logits, on both ranks, are one process's, row for row."""
    import sys

    from nlp_ssl.tasks.inference import PadCollator, predict
    from nlp_ssl.tokenization import load_tokenizer

    work, results = two_ranks
    # each rank ran the model on its own share only (19 + 18), not on all 37 (the gathered logits alone cannot
    # tell: every rank predicting everything gives them too)
    assert [d["predicted"] for d in results] == [19, 18]
    monkeypatch.syspath_prepend(str(work))
    from two_rank_models import classifier, predict_set

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    one = predict(classifier(tok), predict_set(tok), PadCollator(tok), batch_size=4)[0]["logits"]
    sys.modules.pop("two_rank_models", None)
    assert one.shape == (37, 3)
    for rank in (0, 1):
        got = np.load(work / f"logits-{rank}.npy")
        assert got.shape == one.shape
        np.testing.assert_allclose(got, one, rtol=1e-5, atol=1e-6)
        assert (got.argmax(-1) == one.argmax(-1)).all()


@pytest.mark.slow  # shares the launch above
def test_final_save_of_a_real_fsdp2_sharded_model_on_cpu_loads_whole(two_ranks):
    """torch's FSDP2 shards on CPU over gloo (accelerate only enables it on GPUs): two ranks each hold half of
    every block; `save_final` on both gathers the weights, rank 0 alone writes, and the directory loads with
    AutoModelForMaskedLM with exactly the full (unsharded) trained weights."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    work, results = two_ranks
    assert [d["wrote"] for d in results] == [True, False]
    assert all(d["shard"] == [8, 32] for d in results)  # (16, 32) split over 2 ranks: really sharded
    full = torch.load(work / "out" / "full.pt")
    loaded = AutoModelForMaskedLM.from_pretrained(str(work / "out")).state_dict()
    assert set(loaded) <= set(full) | {"cls.predictions.decoder.weight"}
    for k, v in loaded.items():
        assert torch.equal(v, full[k if k in full else "bert.embeddings.word_embeddings.weight"]), k
    key = "bert.encoder.layer.0.output.dense.weight"
    torch.manual_seed(0)  # the script's initial weights: the saved ones were trained away from them
    initial = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(str(work / "out"))).state_dict()
    assert full[key].shape == (16, 32) and not torch.equal(loaded[key], initial[key])
    assert json.loads((work / "out" / "metrics.json").read_text()) == {"steps": 3}


def test_fine_tuning_refuses_parameters_sharded_across_ranks():
    """Fine-tuning predicts each rank's own share (a different number of batches per rank): under FSDP or ZeRO-3
    a forward is collective, so the rank with fewer batches would leave the others waiting forever. Refused with
    the config to use; DDP and ZeRO-2 (whole weights on every rank) run."""
    from nlp_ssl.distributed import refuse_sharded_parameters
    from nlp_ssl.errors import ConfigError

    def trainer(fsdp=False, stage=None):
        plugin = None if stage is None else SimpleNamespace(zero_stage=stage)
        return SimpleNamespace(is_fsdp_enabled=fsdp, is_deepspeed_enabled=stage is not None,
                               accelerator=SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=plugin)))

    with pytest.raises(ConfigError, match="fine-tuning does not run with FSDP.*multi-gpu.yaml"):
        refuse_sharded_parameters(trainer(fsdp=True))
    with pytest.raises(ConfigError, match="DeepSpeed ZeRO-3"):
        refuse_sharded_parameters(trainer(stage=3))
    refuse_sharded_parameters(trainer())  # one process, DDP
    refuse_sharded_parameters(trainer(stage=2))


def test_the_fine_tuning_trainer_is_checked_for_sharded_parameters(tmp_path, tiny_tokenizer_dir, monkeypatch):
    """`tasks.train.train` asks before training: an FSDP-enabled Trainer stops with the config error."""
    import transformers as tf

    import nlp_ssl.training
    from nlp_ssl.errors import ConfigError
    from nlp_ssl.tasks.inference import PadCollator
    from nlp_ssl.tasks.train import train
    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    real = nlp_ssl.training.make_trainer_class

    def fsdp_trainer_class():
        base = real()

        class AsUnderFSDP(base):  # what accelerate sets on GPUs under configs/accelerate/fsdp.yaml
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                self.is_fsdp_enabled = True

            def fit(self, *a, **k):
                pytest.fail("trained under FSDP")

        return AsUnderFSDP

    monkeypatch.setattr(nlp_ssl.training, "make_trainer_class", fsdp_trainer_class)
    model = tf.BertForSequenceClassification(tf.BertConfig(**{**SMALL, "vocab_size": len(tok)}, num_labels=2))
    from datasets import Dataset

    ds = Dataset.from_dict({"input_ids": [[2, 5, 3]] * 4, "labels": [0, 1, 0, 1]})
    args = tf.TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, max_steps=1)
    with pytest.raises(ConfigError, match="FSDP"):
        train(model, args, ds, PadCollator(tok), tok)
