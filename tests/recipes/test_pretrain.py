"""Pretraining recipe on a tiny model and real-data blocks: artifacts, resume, budget, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nlp_ssl.config import from_dict, to_dict
from nlp_ssl.errors import ConfigError, DataError, ModelError, NlpSslError
from nlp_ssl.recipes.pretrain import PretrainConfig, main

REPO = Path(__file__).resolve().parents[2]
TINY = {"arch": "bert", "preset": "tiny", "num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64,
        "dropout": 0.0}


@pytest.fixture(scope="module")
def blocks(tmp_path_factory, tiny_tokenizer_dir, wiki_slice):
    from nlp_ssl.recipes.prepare import PrepareConfig
    from nlp_ssl.recipes.prepare import main as prepare

    out = tmp_path_factory.mktemp("blocks") / "wiki-32"
    prepare(from_dict(PrepareConfig, {"output_dir": str(out), "tokenizer": str(tiny_tokenizer_dir),
                                      "data": {"path": str(wiki_slice), "max_examples": 40}, "block_size": 32,
                                      "validation_fraction": 0.1, "progress": False, "word_starts": True}))
    return out


def cfg(tmp_path, blocks, name="run", model=None, overwrite=False, **train):
    t = {"per_device_train_batch_size": 8, "learning_rate": 3e-3, "max_steps": 6, "eval_steps": 0, "save_steps": 0,
         "logging_steps": 1, "max_eval_samples": 32, "report_to": ["none"], "warmup_ratio": 0.0, **train}
    return from_dict(PretrainConfig, {"output_dir": str(tmp_path / name), "data": str(blocks),
                                      "model": {**TINY, **(model or {})}, "train": t, "overwrite": overwrite})


def test_trains_every_parameter_and_saves_a_standard_artifact(tmp_path, blocks, tiny_tokenizer_dir):
    from safetensors.torch import load_file

    from nlp_ssl.modeling import build_mlm_model
    from nlp_ssl.tokenization import load_tokenizer

    # start from a saved random model (model.init_from), so the initial weights are known exactly
    initial = build_mlm_model(cfg(tmp_path, blocks).model, load_tokenizer(str(tiny_tokenizer_dir)))
    initial.save_pretrained(str(tmp_path / "init"))
    # no weight decay: decay alone would move every weight, trained or not
    metrics = main(cfg(tmp_path, blocks, max_steps=4, weight_decay=0.0, model={"init_from": str(tmp_path / "init")}))
    out = tmp_path / "run"
    assert {"model.safetensors", "config.json", "tokenizer.json", "metrics.json", "config.yaml", "run_info.json"} <= {
        p.name for p in out.iterdir()}
    assert not list(out.glob("*.bin"))  # safetensors only
    assert metrics["steps"] == 4 and 0 <= metrics["eval_mlm_accuracy"] <= 1
    assert metrics["eval_perplexity"] == pytest.approx(__import__("math").exp(metrics["eval_loss"]))
    before = load_file(str(tmp_path / "init" / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    assert before.keys() == after.keys() and len(before) > 10
    assert [k for k in before if torch.equal(before[k], after[k])] == []  # every parameter moved ...
    # ... by at most 4 Adam steps of lr 3e-3 from the saved initial weights (so init_from was really used)
    assert max((before[k] - after[k]).abs().max().item() for k in before) < 0.02


def test_artifact_loads_without_nlp_ssl_in_pipelines_and_task_heads(tmp_path, blocks):
    main(cfg(tmp_path, blocks, max_steps=2))
    code = (
        "import sys\n"
        "from transformers import pipeline, AutoModelForSequenceClassification, AutoModelForQuestionAnswering\n"
        f"d = {str(tmp_path / 'run')!r}\n"
        "out = pipeline('fill-mask', model=d)('the city is [MASK] .')\n"
        "assert len(out) == 5 and all('[MASK]' not in o['sequence'] for o in out)\n"
        "AutoModelForSequenceClassification.from_pretrained(d, num_labels=2)\n"
        "AutoModelForQuestionAnswering.from_pretrained(d)\n"
        "print('OK', 'nlp_ssl' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.stdout.strip().endswith("OK False"), r.stderr[-2000:]


def test_overfitting_one_batch_drives_loss_down(tmp_path, blocks):
    import datasets

    one = datasets.load_from_disk(str(blocks))
    small = tmp_path / "one-batch"
    datasets.DatasetDict({"train": one["train"].select(range(8)), "validation": one["validation"]}).save_to_disk(str(small))
    (small / "prepare_report.json").write_text((blocks / "prepare_report.json").read_text())  # records the tokenizer
    metrics = main(cfg(tmp_path, small, max_steps=60, learning_rate=1e-2, model={"hidden_size": 64}))
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert history["train_loss_last"] < 0.5 * 7.6  # starts near ln(2000) = 7.6
    assert metrics["steps"] == 60


@pytest.mark.parametrize("arch", ["roberta", "modernbert"])
def test_other_architectures_train_and_reload(tmp_path, blocks, arch):
    main(cfg(tmp_path, blocks, max_steps=2, model={"arch": arch}))
    from transformers import AutoModelForMaskedLM

    m = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "run"))
    assert m.config.model_type == arch


def _runs_of_ones(m: torch.Tensor) -> torch.Tensor:
    """Lengths of the runs of True in each row of a (B, T) bool tensor, concatenated."""
    x = torch.nn.functional.pad(m.int(), (1, 1))
    d = x[:, 1:] - x[:, :-1]
    return (d == -1).nonzero()[:, 1] - (d == 1).nonzero()[:, 1]


def test_whole_word_and_span_masking_and_causal_objective(tmp_path, blocks, monkeypatch):
    """The recipe really trains with the configured objective: the batches it masks have that objective's
    statistics (recorded from the collator while the recipe runs)."""
    from nlp_ssl.objectives.collators import CausalLMCollator, MLMCollator

    seen: list[tuple] = []
    mask, causal = MLMCollator.mask, CausalLMCollator.__call__

    def spy_mask(self, input_ids, word_start=None, indices=None):
        inputs, labels = mask(self, input_ids, word_start, indices)
        seen.append((input_ids, ~self._special[input_ids], word_start, labels))
        return inputs, labels

    def spy_causal(self, features):
        batch = causal(self, features)
        seen.append((batch["input_ids"], batch["attention_mask"].bool(), None, batch["labels"]))
        return batch

    monkeypatch.setattr(MLMCollator, "mask", spy_mask)
    monkeypatch.setattr(CausalLMCollator, "__call__", spy_causal)
    for name, extra in {"ww": {"objective": {"masking": {"strategy": "whole_word"}}},
                        "span": {"objective": {"masking": {"strategy": "span", "mask_rate": 0.3}}},
                        "clm": {"objective": {"task": "clm"}, "model": {**TINY, "sparse_prediction": False}}}.items():
        seen.clear()
        c = cfg(tmp_path, blocks, name=name, max_steps=2)
        data = {"output_dir": c.output_dir, "data": c.data, "model": {**TINY, **extra.get("model", {})},
                "objective": extra["objective"], "train": {"per_device_train_batch_size": 8, "max_steps": 2, "eval_steps": 0,
                                                           "save_steps": 0, "report_to": ["none"], "max_eval_samples": 16}}
        metrics = main(from_dict(PretrainConfig, data))
        assert metrics["steps"] == 2
        assert 5.5 < metrics["eval_loss"] < 9.5  # about ln(2000) = 7.6 after 2 steps from random weights
        assert len(seen) >= 3  # the validation set, then a batch per training step
        ids = torch.cat([s[0] for s in seen])
        cand = torch.cat([s[1] for s in seen])
        labels = torch.cat([s[3] for s in seen])
        predicted = labels != -100
        if name == "clm":  # every real token is its own (unshifted) label
            assert torch.equal(predicted, cand) and torch.equal(labels[cand], ids[cand])
            continue
        rate = predicted.sum().item() / cand.sum().item()
        assert not (predicted & ~cand).any()  # special tokens are never predicted
        if name == "ww":
            assert abs(rate - 0.15) < 0.05, rate
            for input_ids, c_, word_start, lab in seen:  # all sub-words of a word share one decision
                word = torch.cumsum(word_start.long(), 1)
                for b in range(len(input_ids)):
                    for w in torch.unique(word[b]):
                        sel = (word[b] == w) & c_[b]
                        decided = (lab[b][sel] != -100)
                        assert decided.all() or not decided.any()
            assert (torch.cat([s[2] for s in seen]).bool() & cand).sum() < cand.sum()  # some words have several sub-words
            assert _runs_of_ones(predicted).float().mean() > 1.5  # whole words (2.0 here); single tokens: ~1.2
        else:
            # (0.25 here: ~100 correlated spans, and spans cut at the ends of 32-token blocks; the default rate 0.15
            # would be far below)
            assert abs(rate - 0.3) < 0.1, rate
            # contiguous spans (Geometric(0.2) lengths, mean ~3.8 before merging; 4.4 here); token masking at 30%
            # gives ~1.4
            assert _runs_of_ones(predicted).float().mean() > 2.5


def test_resume_equals_uninterrupted_run(tmp_path, blocks):
    from safetensors.torch import load_file

    main(cfg(tmp_path, blocks, name="straight", max_steps=6, save_steps=3))
    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    # "kill" after step 3: keep only the checkpoint, as a crash would leave it
    import shutil

    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    for f in (tmp_path / "resumed").iterdir():
        if f.is_file() and f.name not in ("config.yaml", "run_info.json"):
            f.unlink()
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "checkpoint-6")
    metrics = main(cfg(tmp_path, blocks, name="resumed", max_steps=6, save_steps=3, resume=True))
    resumed = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert metrics["steps"] == 6
    for k in straight:
        torch.testing.assert_close(resumed[k], straight[k], rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # real wall-clock time; the schedule itself is tested exactly with a fake clock in test_training.py
def test_token_budget_runs_its_steps_and_records_tokens_and_provenance(tmp_path, blocks):
    # 1,000 tokens at 8 blocks x 32 tokens a step: ceil(3.9) = 4 steps, 1,024 tokens seen
    metrics = main(cfg(tmp_path, blocks, max_steps=-1, max_tokens=1000))
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 4 and saved["tokens_seen"] == 4 * 8 * 32
    prov = saved["provenance"]
    assert prov["run_length"] == {"unit": "max_tokens", "value": 1000, "machine_speed_dependent": False}
    assert len(prov["machine"]["load_average_start"]) == 3 and len(prov["machine"]["load_average_end"]) == 3
    assert prov["machine"]["cores"] >= 1 and prov["versions"]["transformers"] and "commit" in prov["git"]
    # the schedule ran over those 4 steps: linear decay to zero at the last one
    lrs = [h["learning_rate"] for h in json.loads((tmp_path / "run" / "log_history.json").read_text())
           if "learning_rate" in h]
    assert len(lrs) == 4 and lrs[0] == pytest.approx(3e-3) and lrs == sorted(lrs, reverse=True)


def test_time_budget_stops_at_deadline_with_schedule_at_its_end(tmp_path, blocks):
    budget_s = 0.3 * 60  # long enough for a dozen steps on a busy 2-core machine
    metrics = main(cfg(tmp_path, blocks, max_steps=-1, max_time_minutes=0.3, warmup_ratio=0.1))
    history = json.loads((tmp_path / "run" / "log_history.json").read_text())
    lrs = [h["learning_rate"] for h in history if "learning_rate" in h]
    assert metrics["steps"] > 5 and len(lrs) == metrics["steps"]
    assert budget_s <= metrics["train_runtime_s"] < budget_s + 3  # stopped at the deadline (plus the last step)
    peak = max(lrs)
    assert peak > 0.8 * 3e-3  # warmed up to (about) the peak ...
    assert lrs.index(peak) < len(lrs) / 2
    # ... and decayed linearly by time: the last step ran within one step of the deadline, at a near-zero rate
    assert lrs[-1] < 0.2 * peak


def test_output_dir_holding_another_run_is_refused(tmp_path, blocks):
    first = main(cfg(tmp_path, blocks, max_steps=1))
    stamp = (tmp_path / "run" / "model.safetensors").stat().st_mtime_ns
    assert main(cfg(tmp_path, blocks, max_steps=1)) == first  # the same finished run: nothing to redo
    assert (tmp_path / "run" / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(NlpSslError, match="already holds a run; set train.resume=true .* overwrite=true"):
        main(cfg(tmp_path, blocks, max_steps=2))
    with pytest.raises(NlpSslError, match="config differs"):
        main(cfg(tmp_path, blocks, max_steps=2, resume=True))
    assert main(cfg(tmp_path, blocks, max_steps=2, overwrite=True))["steps"] == 2


def test_bad_inputs(tmp_path, blocks, tiny_tokenizer_dir):
    import datasets

    with pytest.raises(ConfigError, match="exceed the model's 16 positions"):
        main(cfg(tmp_path, blocks, model={"max_position_embeddings": 16}))
    with pytest.raises(DataError, match="fewer than one global batch"):
        main(cfg(tmp_path, blocks, per_device_train_batch_size=100000))
    with pytest.raises(DataError, match="no prepared corpus"):
        main(cfg(tmp_path, tmp_path / "nothing"))
    # a corpus whose ids exceed the model's vocabulary (prepared with another tokenizer)
    dd = datasets.load_from_disk(str(blocks))
    big = dd["train"].map(lambda b: {"input_ids": [[i + 5000 for i in x] for x in b["input_ids"]]}, batched=True)
    other = tmp_path / "other-tok-blocks"
    datasets.DatasetDict({"train": big, "validation": dd["validation"]}).save_to_disk(str(other))
    with pytest.raises(ModelError, match="prepared with another tokenizer"):
        main(from_dict(PretrainConfig, {**to_dict(cfg(tmp_path, other)), "tokenizer": str(tiny_tokenizer_dir)}))
    assert not (tmp_path / "run").exists()  # nothing written by refused runs


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, blocks, monkeypatch):
    from transformers import Trainer

    from nlp_ssl.training import TrainingError

    original = Trainer.training_step
    calls = {"n": 0}

    def poisoned(self, *a, **k):
        calls["n"] += 1
        loss = original(self, *a, **k)
        return loss * float("nan") if calls["n"] == 5 else loss

    monkeypatch.setattr(Trainer, "training_step", poisoned)
    with pytest.raises(TrainingError, match=r"loss became nan at step 5.*checkpoint-4"):
        main(cfg(tmp_path, blocks, max_steps=10, save_steps=2))
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-4" / "model.safetensors").exists()
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.slow  # two processes under accelerate launch: over a minute on 2 cores
def test_two_cpu_ranks_reproduce_one_process_loss_curve(tmp_path, blocks):
    """`accelerate launch` with the shipped 2-process CPU config: world size 2, same losses as 1 process."""
    import yaml

    from nlp_ssl.config import to_dict

    single = main(cfg(tmp_path, blocks, name="single", max_steps=5, per_device_train_batch_size=8))
    two = to_dict(cfg(tmp_path, blocks, name="ddp", max_steps=5, per_device_train_batch_size=4))
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(two))
    accelerate = Path(sys.executable).parent / "accelerate"
    r = subprocess.run([str(accelerate), "launch", "--config_file", str(REPO / "configs/accelerate/cpu-2proc.yaml"),
                        "--main_process_port", "29533", str(REPO / "scripts/pretrain.py"), str(path)],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    losses = [[h["loss"] for h in json.loads((tmp_path / d / "log_history.json").read_text()) if "loss" in h]
              for d in ("single", "ddp")]
    assert len(losses[0]) == len(losses[1]) == 5
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    assert ddp["eval_loss"] == pytest.approx(single["eval_loss"], rel=1e-4)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two `accelerate launch` processes (two simulated machines): about a minute on 2 cores
def test_two_simulated_machines_reproduce_one_process_loss_curve(tmp_path, blocks):
    """The shipped two-machine config, launched twice on this machine (machine_rank 0 and 1, rendezvous on
    127.0.0.1, one process each, gloo): one process group of world size 2, the one-process loss curve at the same
    global batch, and only rank 0 writes the run directory."""
    import os

    import yaml

    single = main(cfg(tmp_path, blocks, name="single", max_steps=5, per_device_train_batch_size=8))
    path = tmp_path / "nodes.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg(tmp_path, blocks, name="nodes", max_steps=5, per_device_train_batch_size=4))))
    accelerate = Path(sys.executable).parent / "accelerate"
    port = str(free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([str(accelerate), "launch", "--config_file", str(REPO / "configs/accelerate/cpu-2node.yaml"),
                               "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1", "--main_process_port", port,
                               str(REPO / "scripts/pretrain.py"), str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env)
             for rank in (0, 1)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    assert "2 process(es)" in outs[0] and "saved to" in outs[0] and "saved to" not in outs[1]
    nodes = json.loads((tmp_path / "nodes" / "metrics.json").read_text())
    assert nodes["world_size"] == 2
    losses = [[h["loss"] for h in json.loads((tmp_path / d / "log_history.json").read_text()) if "loss" in h]
              for d in ("single", "nodes")]
    assert len(losses[0]) == len(losses[1]) == 5
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    assert nodes["eval_loss"] == pytest.approx(single["eval_loss"], rel=1e-4)


@pytest.mark.slow  # real wall-clock time (see test_training.py for the exact fake-clock version)
def test_resumed_time_budget_counts_the_time_already_trained(tmp_path, blocks):
    import shutil

    budget_min = 0.25  # several checkpoints of 4 steps even on a busy 2-core machine
    first = main(cfg(tmp_path, blocks, name="a", max_steps=-1, max_time_minutes=budget_min,
                     save_steps=4, save_total_limit=1000))
    first_ckpt = tmp_path / "a" / "checkpoints" / "checkpoint-4"
    elapsed = json.loads((first_ckpt / "time_budget.json").read_text())["elapsed_seconds"]
    assert 0 < elapsed < budget_min * 60
    # a crash after the first checkpoint: only config, run info and that checkpoint survive
    shutil.copytree(tmp_path / "a", tmp_path / "b", ignore=shutil.ignore_patterns("*.safetensors", "metrics.json",
                                                                                     "log_history.json"))
    for c in (tmp_path / "b" / "checkpoints").iterdir():
        if c.name != first_ckpt.name:
            shutil.rmtree(c)
    shutil.copytree(first_ckpt, tmp_path / "b" / "checkpoints" / first_ckpt.name, dirs_exist_ok=True)
    resumed = main(cfg(tmp_path, blocks, name="b", max_steps=-1, max_time_minutes=budget_min,
                       save_steps=4, save_total_limit=1000, resume=True))
    # the resumed run only trains for what was left of the budget; its train_runtime_s covers the whole run
    before = json.loads((first_ckpt / "nlp_ssl_progress.json").read_text())["train_seconds"]
    assert 0 < before <= resumed["train_runtime_s"]
    assert resumed["train_runtime_s"] - before < budget_min * 60 - elapsed + 3
    assert resumed["steps"] > int(first_ckpt.name.split("-")[1])
    assert first["steps"] > 4


def test_each_run_logs_tensorboard_events_in_its_own_directory(tmp_path, blocks, monkeypatch):
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    for name in ("first", "second"):  # two runs in one process
        main(cfg(tmp_path, blocks, name=name, max_steps=1, report_to=["tensorboard"]))
    counts = [len(list((tmp_path / name / "tensorboard").glob("events.out.tfevents.*"))) for name in ("first", "second")]
    # each run writes the same files (training, then the final evaluation), each into its own directory
    # (before: the second run's events went into the first run's directory: counts 4 and 0)
    assert counts[0] == counts[1] >= 1, counts


def test_a_failed_hub_push_leaves_the_run_finished(tmp_path, blocks, monkeypatch):
    """hub.push uploads after the run is saved and marked finished: a refused upload is an error that says how
    to push later, and the same config then finds the run done (no 'already holds a run', no retraining)."""
    import nlp_ssl.hub.push as hub

    def refused(*args, **kwargs):
        raise hub.HubError("uploading failed (HTTP 507)")

    monkeypatch.setattr(hub, "push", refused)
    c = from_dict(PretrainConfig, {**to_dict(cfg(tmp_path, blocks, max_steps=1)),
                                   "hub": {"push": True, "repo_id": "me/enc"}})
    with pytest.raises(hub.HubError, match="The model is saved in .*nlp-ssl push .* --repo-id me/enc"):
        main(c)
    from nlp_ssl.atomic import is_complete

    assert is_complete(tmp_path / "run")
    assert 'repo = "me/enc"' in (tmp_path / "run" / "README.md").read_text()
    stamp = (tmp_path / "run" / "model.safetensors").stat().st_mtime_ns
    main(cfg(tmp_path, blocks, max_steps=1))  # same run (where it is shared is not part of it): nothing to redo
    assert (tmp_path / "run" / "model.safetensors").stat().st_mtime_ns == stamp
