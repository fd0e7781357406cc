"""Fault loops (slow; `pytest -m slow tests/reliability`): kill -9 at random moments, and at the worst chosen
moments (half-way through a checkpoint, before a marker, between renames), then run the same command again
until it finishes. Every rerun must succeed without manual help, pick no incomplete checkpoint, leave no
temporary folder behind, and end with the output of an uninterrupted run (bit-equal weights on CPU).

Run with `-s` to see the figures (kills injected and survived, incomplete checkpoints skipped, leftovers).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from nlp_ssl.atomic import is_complete
from nlp_ssl.config import from_dict

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
FAULTS = ["save_model@1", "save_model@3", "checkpoint_before_marker@2", "checkpoint_before_marker@4",
          "save_model@5", "checkpoint_before_marker@1"]


def _env(fault: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("NLP_SSL_FAULT", None)
    if fault:
        env["NLP_SSL_FAULT"] = fault
    return env


def _run_with_kill(argv: list[str], delay: float | None, fault: str | None, log: Path,
                   after: tuple[str, int] | None = None) -> int:
    """Run `python -m nlp_ssl ARGV` and SIGKILL it `delay` seconds after its output shows `after` = (text, n)
    n times (or after its start); delay None: let it finish, or kill itself at `fault`."""
    with open(log, "a") as out:
        out.write(f"\n=== {' '.join(argv)} delay={delay} after={after!r} fault={fault}\n")
        out.flush()
        start = log.stat().st_size
        p = subprocess.Popen([sys.executable, "-m", "nlp_ssl", *argv], env=_env(fault), stdout=out, stderr=out)
        if delay is not None:
            t0 = time.time()
            while after and p.poll() is None and log.read_text()[start:].count(after[0]) < after[1] \
                    and time.time() - t0 < 600:
                time.sleep(0.02)
            try:
                p.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
        p.wait()
    return p.returncode


def _leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(".*") if any(t in p.name for t in (".tmp-", ".work-", ".old-", ".final-tmp"))]


def _weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "model.safetensors"))


def _bit_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _figures(name: str, **kw) -> None:
    print(f"\nFAULT-LOOP {name}: " + ", ".join(f"{k}={v}" for k, v in kw.items()))


def test_pretraining_survives_20_kills_and_ends_bit_equal(tmp_path, blocks, pretrain_dict):
    from nlp_ssl.recipes.pretrain import PretrainConfig, main

    settings = dict(max_steps=1000, save_steps=3, save_total_limit=2, eval_steps=200, logging_steps=10)
    straight = main(from_dict(PretrainConfig, pretrain_dict(tmp_path / "straight", blocks, **settings)))
    run = tmp_path / "run"
    config = tmp_path / "pretrain.yaml"
    config.write_text(yaml.safe_dump(pretrain_dict(run, blocks, **settings)))
    log = tmp_path / "log.txt"
    rng = random.Random(12)
    kills, attempts = 0, 0
    faults = list(FAULTS)
    while kills < 20 and attempts < 40:
        attempts += 1
        resume = ["train.resume=true"] if (run / "config.yaml").exists() else []
        roll = rng.random()
        if faults and roll < 0.3:  # a chosen worst moment: half-way through a save, before a marker
            rc = _run_with_kill(["pretrain", str(config), *resume], None, faults.pop(0), log)
        elif roll < 0.45:  # while starting up or loading the checkpoint
            rc = _run_with_kill(["pretrain", str(config), *resume], rng.uniform(1, 6), None, log)
        else:  # while training and saving (a checkpoint every 3 steps): after 1-3 training logs (10 steps each; only
            # their lines carry grad_norm, in the Trainer's dict and in nlp-ssl's progress lines alike), at random
            rc = _run_with_kill(["pretrain", str(config), *resume], rng.uniform(0, 0.5), None, log,
                                after=("grad_norm", rng.randint(1, 3)))
        if rc == 0:
            break  # finished before the kill came
        assert rc == -signal.SIGKILL, log.read_text()[-3000:]
        kills += 1
    # the last moment: the final model saved, its marker not yet written
    rc = _run_with_kill(["pretrain", str(config), "train.resume=true"], None, "finalize_before_marker", log)
    kills += rc == -signal.SIGKILL
    survived_runs = log.read_text().count("resuming from")
    rc = _run_with_kill(["pretrain", str(config), "train.resume=true"], None, None, log)
    text = log.read_text()
    assert rc == 0, text[-3000:]
    assert is_complete(run)
    assert _bit_equal(_weights(run), _weights(tmp_path / "straight"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == straight["steps"]
    assert metrics["train_loss_mean"] == pytest.approx(straight["train_loss_mean"], rel=1e-6)
    assert "Traceback" not in text
    skipped = text.count("skipping incomplete checkpoint")
    left = _leftovers(tmp_path)
    assert left == []
    _figures("pretrain", kills=kills, resumes=survived_runs, incomplete_checkpoints_skipped=skipped,
             corrupt_checkpoints_picked=0, leftovers=len(left), bit_equal=True)
    assert kills >= 15  # most attempts were real kills, not runs that finished first


def _finetune_cfg(tmp_path: Path, encoder: Path, out: Path) -> Path:
    rows = [("a good and charming film", "positive"), ("a dull and tiresome mess", "negative")] * 60
    data = tmp_path / "cls.csv"
    data.write_text("text,label\n" + "".join(f"{t} {i},{lab}\n" for i, (t, lab) in enumerate(rows)))
    src = {"path": str(data)}
    cfg = {"output_dir": str(out), "model": str(encoder),
           "task": {"train": src, "eval": {"dev": src}, "text_columns": ["text"], "label_column": "label",
                    "metrics": ["accuracy"], "max_length": 32},
           "train": {"learning_rate": [1e-3], "per_device_train_batch_size": 8, "max_steps": 30, "logging_steps": 5}}
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_finetuning_survives_kills(tmp_path, tiny_encoder_dir):
    straight_cfg = _finetune_cfg(tmp_path, tiny_encoder_dir, tmp_path / "straight")
    assert _run_with_kill(["finetune", str(straight_cfg)], None, None, tmp_path / "log.txt") == 0
    cfg = _finetune_cfg(tmp_path, tiny_encoder_dir, tmp_path / "run")
    rng = random.Random(3)
    kills = 0
    for fault in (None, "atomic_dir_before_rename", None, None):
        rc = _run_with_kill(["finetune", str(cfg)], rng.uniform(5, 12) if fault is None else None, fault, tmp_path / "log.txt")
        kills += rc == -signal.SIGKILL
        if rc == 0:
            break
    assert _run_with_kill(["finetune", str(cfg)], None, None, tmp_path / "log.txt") == 0
    assert is_complete(tmp_path / "run")
    assert _bit_equal(_weights(tmp_path / "run"), _weights(tmp_path / "straight"))
    left = _leftovers(tmp_path)
    assert left == []
    _figures("finetune", kills=kills, leftovers=len(left), bit_equal=True)


def test_prepare_survives_kills(tmp_path, tiny_tokenizer_dir, wiki_slice):
    import datasets

    def cfg(name):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / name), "tokenizer": str(tiny_tokenizer_dir),
                                        "data": {"path": str(wiki_slice)}, "block_size": 32, "num_proc": 1,
                                        "progress": False}))
        return path

    log = tmp_path / "log.txt"
    assert _run_with_kill(["prepare", str(cfg("straight"))], None, None, log) == 0
    rng = random.Random(5)
    kills = 0
    for fault in (None, "atomic_dir_before_rename", None):
        rc = _run_with_kill(["prepare", str(cfg("run"))], rng.uniform(4, 9) if fault is None else None, fault, log)
        kills += rc == -signal.SIGKILL
    assert _run_with_kill(["prepare", str(cfg("run"))], None, None, log) == 0
    a, b = datasets.load_from_disk(str(tmp_path / "straight")), datasets.load_from_disk(str(tmp_path / "run"))
    for split in a:
        assert a[split]["input_ids"] == b[split]["input_ids"]
    left = _leftovers(tmp_path)
    assert left == []
    _figures("prepare", kills=kills, leftovers=len(left), equal=True)


def test_two_process_run_with_one_rank_killed_stops_and_resumes(tmp_path, blocks, pretrain_dict):
    """`accelerate launch` (CPU, 2 processes); SIGKILL one rank after the first checkpoint: the launcher stops the
    other rank and exits with an error naming the lost rank; a restart with train.resume=true finishes."""
    import psutil

    run = tmp_path / "ddp"
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(pretrain_dict(run, blocks, max_steps=200, save_steps=2, per_device_train_batch_size=4)))
    accelerate = Path(sys.executable).parent / "accelerate"
    argv = [str(accelerate), "launch", "--config_file", str(REPO / "configs/accelerate/cpu-2proc.yaml"),
            "--main_process_port", "29561", str(REPO / "scripts/pretrain.py"), str(config)]
    log = open(tmp_path / "log.txt", "w")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)
    deadline = time.time() + 300
    from nlp_ssl.checkpoints import last_complete_checkpoint

    def checkpointed() -> bool:
        return last_complete_checkpoint(run / "checkpoints", remove_incomplete=False, log=lambda _: None) is not None

    while not checkpointed() and time.time() < deadline and p.poll() is None:
        time.sleep(0.5)
    assert p.poll() is None, (tmp_path / "log.txt").read_text()[-3000:]  # still running, a checkpoint written

    def cmdline(proc) -> str:
        try:
            return " ".join(proc.cmdline())
        except psutil.Error:
            return ""

    workers = [c for c in psutil.Process(p.pid).children(recursive=True) if "pretrain.py" in cmdline(c)]
    assert len(workers) >= 2, (tmp_path / "log.txt").read_text()[-3000:]
    workers[-1].send_signal(signal.SIGKILL)
    rc = p.wait(timeout=300)
    log.close()
    text = (tmp_path / "log.txt").read_text()
    assert rc != 0
    assert "exitcode  : -9" in text or "Signal 9" in text or "SIGKILL" in text, text[-3000:]
    r = subprocess.run(argv + ["train.resume=true"], capture_output=True, text=True, env=_env(), cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "resuming from" in r.stdout + r.stderr
    assert is_complete(run) and json.loads((run / "metrics.json").read_text())["steps"] == 200
    _figures("two-process", killed_rank_exit=rc, resumed=True)
