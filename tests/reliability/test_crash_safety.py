"""Crash safety: a kill at any moment leaves the previous state or a complete new one; the next run resumes
without manual help, leaves no temporary folder behind, and ends with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from nlp_ssl.checkpoints import read_progress
from nlp_ssl.atomic import MARKER, atomic_dir, clean_stale, is_complete, write_marker
from nlp_ssl.config import from_dict
from nlp_ssl.recipes.pretrain import PretrainConfig, main

REPO = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "model.safetensors"))


def assert_bit_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_marker_lists_every_file_with_its_size(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "a.bin").write_bytes(b"x" * 100)
    (d / "sub").mkdir()
    (d / "sub" / "b.json").write_text("{}")
    assert not is_complete(d)  # no marker yet
    write_marker(d)
    assert is_complete(d)
    assert json.loads((d / MARKER).read_text())["files"] == {"a.bin": 100, "sub/b.json": 2}
    (d / "a.bin").write_bytes(b"x" * 50)  # truncated (a kill while the file was written)
    assert not is_complete(d)
    (d / "a.bin").unlink()  # deleted (a kill while the folder was removed)
    assert not is_complete(d)


def test_atomic_dir_cleans_what_killed_runs_left_and_restores_between_renames(tmp_path):
    out = tmp_path / "out"
    pid = dead_pid()
    for kind in ("tmp", "work"):
        (tmp_path / f".out.{kind}-{pid}").mkdir()
        (tmp_path / f".out.{kind}-{pid}" / "big.arrow").write_bytes(b"0" * 1000)
    alive = tmp_path / f".out.tmp-{os.getpid() + 0}"  # this process: never touched by the cleaner of another run
    with atomic_dir(out) as tmp:
        (tmp / "f.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert is_complete(out) and not alive.exists()

    # a kill between the two renames of a replacement: the previous output sits at .out.old-PID, no `out`
    shutil.move(str(out), str(tmp_path / f".out.old-{pid}"))
    clean_stale(out)
    assert (out / "f.txt").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]

    # an exception inside the block: the previous output stays, nothing left beside it
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "f.txt").write_text("half")
            raise RuntimeError("boom")
    assert (out / "f.txt").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory, blocks, pretrain_dict):
    """An uninterrupted tiny pretraining (6 steps, checkpoints at 3 and 6)."""
    out = tmp_path_factory.mktemp("straight") / "run"
    metrics = main(from_dict(PretrainConfig, pretrain_dict(out, blocks)))
    return out, metrics


def test_kill_during_checkpoint_save_is_skipped_and_resume_matches_uninterrupted(tmp_path, blocks, straight,
                                                                                 pretrain_dict, capsys):
    run = tmp_path / "run"
    config = tmp_path / "pretrain.yaml"
    config.write_text(yaml.safe_dump(pretrain_dict(run, blocks)))
    env = {**os.environ, "NLP_SSL_FAULT": "save_model@2", "PYTHONPATH": str(REPO)}  # mid-save of checkpoint-6
    r = subprocess.run([sys.executable, "-m", "nlp_ssl", "pretrain", str(config)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == -9, r.stderr[-2000:]
    ckpts = run / "checkpoints"
    assert (ckpts / "checkpoint-6" / "model.safetensors").exists()  # written ...
    assert not is_complete(ckpts / "checkpoint-6") and is_complete(ckpts / "checkpoint-3")  # ... but not complete
    assert not is_complete(run)

    metrics = main(from_dict(PretrainConfig, pretrain_dict(run, blocks, resume=True)))
    out = capsys.readouterr().out
    assert f"skipping incomplete checkpoint {ckpts / 'checkpoint-6'}" in out
    assert "resuming from" in out and "checkpoint-3" in out
    straight_dir, straight_metrics = straight
    assert_bit_equal(weights(run), weights(straight_dir))
    assert metrics["steps"] == 6
    # figures cover the whole run, not only the resumed steps
    assert metrics["train_loss_mean"] == pytest.approx(straight_metrics["train_loss_mean"], rel=1e-6)
    assert metrics["eval_loss"] == straight_metrics["eval_loss"]
    before = read_progress(ckpts / "checkpoint-3")["train_seconds"]  # the killed session's, up to checkpoint-3
    assert 0 < before < metrics["train_runtime_s"]
    assert is_complete(run) and sorted(p.name for p in tmp_path.iterdir()) == ["pretrain.yaml", "run"]


def test_kill_while_final_model_is_saved_resumes_without_training_again(tmp_path, blocks, straight, pretrain_dict,
                                                                       monkeypatch):
    import nlp_ssl.checkpoints as checkpoints

    class Killed(BaseException):
        """Stands for SIGKILL: nothing after the fault point runs."""

    def kill_at(name):
        if name == "finalize_before_marker":
            raise Killed

    monkeypatch.setattr(checkpoints, "fault_point", kill_at)
    run = tmp_path / "run"
    with pytest.raises(Killed):
        main(from_dict(PretrainConfig, pretrain_dict(run, blocks)))
    assert (run / "model.safetensors").exists() and (run / "metrics.json").exists()
    assert not is_complete(run)  # metrics.json is there, but the run is not marked finished
    monkeypatch.undo()
    with pytest.raises(Exception, match="already holds a run; set train.resume=true"):
        main(from_dict(PretrainConfig, pretrain_dict(run, blocks)))
    recorded = read_progress(run / "checkpoints" / "checkpoint-6")["train_seconds"]
    history_before = json.loads((run / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
    metrics = main(from_dict(PretrainConfig, pretrain_dict(run, blocks, resume=True)))
    straight_dir, straight_metrics = straight
    assert_bit_equal(weights(run), weights(straight_dir))
    # resuming from the last checkpoint trains no extra step and adds only the final evaluation
    assert metrics["steps"] == 6 and metrics["tokens_seen"] == straight_metrics["tokens_seen"]
    assert metrics["train_runtime_s"] == pytest.approx(recorded) and recorded > 0  # the whole run's, not 0 s
    assert metrics["train_loss_mean"] == pytest.approx(straight_metrics["train_loss_mean"], rel=1e-6)
    assert {k: v for k, v in metrics.items() if k.startswith("eval_") and "runtime" not in k and "per_second" not in k} \
        == {k: v for k, v in straight_metrics.items() if k.startswith("eval_") and "runtime" not in k
            and "per_second" not in k}
    history = json.loads((run / "log_history.json").read_text())
    assert history[:len(history_before)] == history_before and max(h["step"] for h in history) == 6
    assert is_complete(run)


def test_prepare_killed_before_its_output_is_moved_into_place_leaves_nothing_for_ever(tmp_path, tiny_tokenizer_dir,
                                                                                    wiki_slice, capsys):
    """A real SIGKILL just before the finished corpus is renamed into place: the next run removes the orphaned
    `.NAME.tmp-PID` folder (22 MB for a small corpus before this fix) and writes the same corpus."""
    import datasets

    from nlp_ssl.recipes.prepare import PrepareConfig
    from nlp_ssl.recipes.prepare import main as prepare

    data = {"output_dir": str(tmp_path / "prep"), "tokenizer": str(tiny_tokenizer_dir),
            "data": {"path": str(wiki_slice), "max_examples": 30}, "block_size": 32, "num_proc": 1, "progress": False}
    config = tmp_path / "prepare.yaml"
    config.write_text(yaml.safe_dump(data))
    env = {**os.environ, "NLP_SSL_FAULT": "atomic_dir_before_rename", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "nlp_ssl", "prepare", str(config)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == -9, r.stderr[-2000:]
    orphans = [p.name for p in tmp_path.iterdir() if p.name.startswith(".prep.tmp-")]
    assert len(orphans) == 1 and not (tmp_path / "prep").exists()
    prepare(from_dict(PrepareConfig, data))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prep", "prepare.yaml"]
    assert is_complete(tmp_path / "prep")
    assert len(datasets.load_from_disk(str(tmp_path / "prep"))["train"]) > 0


def test_multi_process_checkpoint_marker_waits_for_every_rank_files(tmp_path):
    """With 2 processes every rank writes its own `rng_state_R.pth` into the checkpoint and the Trainer does not
    wait for them: the marker must be written only after every rank has finished its files (else a kill of
    rank 1 leaves a checkpoint "complete" without its RNG state, or a half-written file makes a good one look
    incomplete)."""
    from types import SimpleNamespace

    from nlp_ssl.checkpoints import CompleteCheckpoints

    run_dir = tmp_path / "checkpoints"

    class FakeTrainer:  # rank 0's view: its own files written; rank 1's arrive when ranks synchronise
        def _save_checkpoint(self, model, trial):
            ckpt = run_dir / f"checkpoint-{self.state.global_step}"
            ckpt.mkdir(parents=True)
            (ckpt / "model.safetensors").write_bytes(b"w" * 10)
            (ckpt / "rng_state_0.pth").write_bytes(b"r" * 5)

    class Synchronised:
        def wait_for_everyone(self):
            for ckpt in run_dir.glob("checkpoint-*"):
                (ckpt / "rng_state_1.pth").write_bytes(b"r" * 5)

    class Trainer(CompleteCheckpoints, FakeTrainer):
        pass

    t = Trainer()
    t.args = SimpleNamespace(save_total_limit=None, should_save=True, world_size=2)
    t.state = SimpleNamespace(global_step=3, best_model_checkpoint=None)
    t.accelerator = Synchronised()
    t.callback_handler = SimpleNamespace(callbacks=[])  # a real Trainer always has one (checkpoints ask its callbacks)
    t._get_output_dir = lambda trial=None: str(run_dir)
    t._save_checkpoint(None, None)
    listed = json.loads((run_dir / "checkpoint-3" / MARKER).read_text())["files"]
    assert "rng_state_1.pth" in listed
