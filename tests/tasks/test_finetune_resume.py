"""Mid-run checkpoints and resume of fine-tuning: a run interrupted while it writes a checkpoint, resumed with
train.resume=true, ends with the same weights, curve and metrics as a run never interrupted; finished grid cells
are not re-run; checkpoints left without resume are refused."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from nlp_ssl.config import from_dict
from nlp_ssl.errors import OutputError
from nlp_ssl.recipes.finetune import FinetuneConfig, main

TASK = {"preset": "sst2", "held_out_unit": "example", "max_length": 32, "train": {"path": "glue/sst2/train.tsv", "max_examples": 120},
        "eval": {"dev": {"path": "glue/sst2/dev.tsv", "max_examples": 16}}, "held_out": {"selection": 0.2}}


def cfg(tmp_path, encoder, name, **train):
    t = {"learning_rate": [1e-3], "max_steps": 6, "per_device_train_batch_size": 8, "logging_steps": 1000,
         "eval_steps": 2, "save_steps": 2, "save_total_limit": 2, "dropout": 0.1, **train}
    return from_dict(FinetuneConfig, {"output_dir": str(tmp_path / name), "model": str(encoder), "task": TASK,
                                      "max_train_samples": 64, "train": t})


class Interrupt(Exception):
    pass


def interrupt_at(monkeypatch, point: str, nth: int):
    """Raise (as a kill would stop the run) the nth time the run reaches fault point `point`."""
    import nlp_ssl.checkpoints

    hits = {"n": 0}

    def fault(name):
        if name == point:
            hits["n"] += 1
            if hits["n"] == nth:
                raise Interrupt(name)

    monkeypatch.setattr(nlp_ssl.checkpoints, "fault_point", fault)


def weights(path):
    return load_file(str(path / "model.safetensors"))


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, tiny_encoder_dir, data_dir, monkeypatch,
                                                                   capsys):
    full = main(cfg(tmp_path, tiny_encoder_dir, "full"), data_dir)
    assert not (tmp_path / "full" / "checkpoints").exists()  # spent once the run is saved

    interrupt_at(monkeypatch, "checkpoint_before_marker", 2)  # checkpoint-4 written but never marked complete
    with pytest.raises(Interrupt):
        main(cfg(tmp_path, tiny_encoder_dir, "cut"), data_dir)
    ckpts = tmp_path / "cut" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["checkpoint-2", "checkpoint-4"]
    monkeypatch.undo()
    with pytest.raises(OutputError, match="train.resume=true to continue it"):  # refused before any work
        main(cfg(tmp_path, tiny_encoder_dir, "cut"), data_dir)
    capsys.readouterr()
    resumed = main(cfg(tmp_path, tiny_encoder_dir, "cut", resume=True), data_dir)
    out = capsys.readouterr().out
    assert "skipping incomplete checkpoint" in out  # checkpoint-4: no marker, removed
    assert f"resuming from {ckpts / 'checkpoint-2'}" in out
    assert "step 2:" not in out and "step 4:" in out  # the curve's first point came from the checkpoint

    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["eval"] == full["eval"] and resumed["steps"] == full["steps"] == 6
    assert resumed["train_loss"] == pytest.approx(full["train_loss"], rel=1e-6)
    curve = [json.loads((tmp_path / n / "learning_curve.json").read_text()) for n in ("full", "cut")]
    assert curve[0] == curve[1] and [p["step"] for p in curve[0]["points"]] == [2, 4, 6]
    assert not ckpts.exists()


def test_best_weights_are_those_of_the_best_selection_score(tmp_path, tiny_encoder_dir, data_dir):
    metrics = main(cfg(tmp_path, tiny_encoder_dir, "loss", metric_for_best_model="loss", max_steps=8, save_steps=0,
                       learning_rate=[3e-3]), data_dir)
    curve = json.loads((tmp_path / "loss" / "learning_curve.json").read_text())
    assert curve["metric"] == "loss" and curve["greater_is_better"] is False
    best = min(curve["points"], key=lambda p: p["loss"])
    assert curve["best_step"] == best["step"] == metrics["best_step"]
    # the saved model is the best one: its selection accuracy is that of the best point
    assert metrics["eval"]["selection"]["accuracy"] == pytest.approx(best["accuracy"])


@pytest.mark.slow
def test_a_grid_resumes_its_interrupted_cell_and_reuses_the_finished_ones(tmp_path, tiny_encoder_dir, data_dir,
                                                                          monkeypatch, capsys):
    grid = {"learning_rate": [1e-3, 3e-3], "max_steps": 4, "eval_steps": 2}
    full = main(cfg(tmp_path, tiny_encoder_dir, "full", **grid), data_dir)
    interrupt_at(monkeypatch, "checkpoint_before_marker", 4)  # cell 1 saves at 2 and 4; cell 2 at 2, dies at 4
    with pytest.raises(Interrupt):
        main(cfg(tmp_path, tiny_encoder_dir, "cut", **grid), data_dir)
    monkeypatch.undo()
    first = tmp_path / "cut" / "lr0.001-seed1" / "model.safetensors"
    stamp = first.stat().st_mtime_ns
    capsys.readouterr()
    resumed = main(cfg(tmp_path, tiny_encoder_dir, "cut", resume=True, **grid), data_dir)
    out = capsys.readouterr().out
    assert first.stat().st_mtime_ns == stamp  # the finished cell was not re-run
    assert f"resuming from {tmp_path / 'cut' / 'checkpoints' / 'lr0.003-seed1' / 'checkpoint-2'}" in out
    assert resumed["summary"] == full["summary"] and resumed["selection"] == full["selection"]
    assert not (tmp_path / "cut" / "checkpoints").exists()


@pytest.mark.slow
def test_qa_resumes_to_the_same_model(tmp_path, tiny_encoder_dir, data_dir, monkeypatch):
    from pathlib import Path

    from nlp_ssl.cli import build_config

    dev = json.loads((Path(data_dir) / "qa/squad/dev-v1.1-half-a.json").read_text())["data"][0]
    small = tmp_path / "dev.json"
    small.write_text(json.dumps({"version": "1.1", "data": [{"title": dev["title"], "paragraphs": dev["paragraphs"][:1]}]}))

    def run(name, **train):
        raw = {"output_dir": str(tmp_path / name), "model": str(tiny_encoder_dir),
               "task": {"type": "extractive_qa", "preset": "squad", "max_length": 96, "doc_stride": 32,
                        "max_query_length": 24, "train": {"path": "qa/squadshifts/new_wiki_v1.0.json", "max_examples": 60},
                        "eval": {"dev": {"path": str(small)}}},
               "train": {"learning_rate": [1e-3], "max_steps": 4, "per_device_train_batch_size": 16, "logging_steps": 1000,
                         "eval_steps": 2, "save_steps": 2, **train}}
        cfg, finetune = build_config("finetune", raw)
        return finetune(cfg, data_dir)

    full = run("full")
    interrupt_at(monkeypatch, "checkpoint_before_marker", 2)
    with pytest.raises(Interrupt):
        run("cut")
    monkeypatch.undo()
    resumed = run("cut", resume=True)
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)

    def scores(m):  # without the timing
        return {k: v for k, v in m["eval"]["dev"].items() if not k.endswith("per_second")}

    assert scores(resumed) == scores(full)


@pytest.mark.slow
def test_a_run_killed_after_early_stopping_resumes_to_the_same_end(tmp_path, tiny_encoder_dir, data_dir, monkeypatch):
    import nlp_ssl.atomic

    stop = {"eval_steps": 1, "save_steps": 1, "early_stopping_patience": 1, "max_steps": 8}
    full = main(cfg(tmp_path, tiny_encoder_dir, "full", **stop), data_dir)
    curve = json.loads((tmp_path / "full" / "learning_curve.json").read_text())
    assert curve["stopped_early"] and full["steps"] < 8

    def killed(name):  # the kill strikes after the last checkpoint, while the finished run is moved into place
        if name == "atomic_dir_before_rename":
            raise Interrupt(name)

    monkeypatch.setattr(nlp_ssl.atomic, "fault_point", killed)
    with pytest.raises(Interrupt):
        main(cfg(tmp_path, tiny_encoder_dir, "cut", **stop), data_dir)
    monkeypatch.undo()
    resumed = main(cfg(tmp_path, tiny_encoder_dir, "cut", resume=True, **stop), data_dir)  # nothing left to train
    assert (resumed["steps"], resumed["eval"]) == (full["steps"], full["eval"])
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "cut" / "learning_curve.json").read_text()) == curve


class Started(Exception):
    pass


def _leftover_checkpoint(out, cfg):
    """What an interrupted run with save_steps leaves: its run info and config, and a complete checkpoint."""
    from nlp_ssl.atomic import write_marker
    from nlp_ssl.runinfo import write_run_info

    out.mkdir(parents=True)
    write_run_info(out, cfg, "finetune")
    ckpt = out / "checkpoints" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{}\n")
    write_marker(ckpt)


def test_overwrite_starts_over_a_run_that_left_checkpoints(tmp_path, tiny_encoder_dir, data_dir, monkeypatch):
    """overwrite=true replaces the output_dir, checkpoints included: the refusal (which names overwrite=true as
    the fix) is for a run that neither resumes nor overwrites."""
    import nlp_ssl.tasks.classification_finetune as cf
    import nlp_ssl.tasks.qa_finetune as qf
    from nlp_ssl.cli import build_config

    def started(*a, **k):
        raise Started()

    monkeypatch.setattr(cf.ClassificationJob, "__init__", started)  # past the output-dir checks: the run would start
    monkeypatch.setattr(qf.QAJob, "__init__", started)
    raw = {"output_dir": str(tmp_path / "cls"), "model": str(tiny_encoder_dir), "task": TASK,
           "train": {"learning_rate": 1e-3, "max_steps": 2, "save_steps": 1}}
    _leftover_checkpoint(tmp_path / "cls", from_dict(FinetuneConfig, raw))
    with pytest.raises(OutputError, match="train.resume=true to continue it"):
        main(from_dict(FinetuneConfig, raw), data_dir)
    with pytest.raises(Started):
        main(from_dict(FinetuneConfig, {**raw, "overwrite": True}), data_dir)

    qa = {"output_dir": str(tmp_path / "qa"), "model": str(tiny_encoder_dir), "overwrite": True,
          "task": {"type": "extractive_qa", "preset": "squad"},
          "train": {"learning_rate": 1e-3, "max_steps": 2, "save_steps": 1}}
    cfg, finetune = build_config("finetune", qa)
    _leftover_checkpoint(tmp_path / "qa", cfg)
    with pytest.raises(Started):
        finetune(cfg, data_dir)


@pytest.mark.parametrize("task", [TASK, {"type": "extractive_qa", "preset": "squad"}])
def test_resume_and_overwrite_together_are_refused(tmp_path, task):
    """overwrite=true would delete the checkpoints train.resume=true asks to continue from (as pretraining says)."""
    from nlp_ssl.cli import build_config
    from nlp_ssl.errors import ConfigError

    raw = {"output_dir": str(tmp_path / "r"), "model": "m", "overwrite": True, "task": task,
           "train": {"learning_rate": 1e-3, "save_steps": 2, "resume": True}}
    with pytest.raises(ConfigError, match="overwrite and train.resume: choose one"):
        build_config("finetune", raw)
