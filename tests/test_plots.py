"""Plots drawn headless from a run's own records, and the training logs fine-tuning keeps."""

from __future__ import annotations

import json
from pathlib import Path

from nlp_ssl.outputs import keep_training_logs
from nlp_ssl.plots import plot_run

PNG = b"\x89PNG\r\n\x1a\n"


def test_pretraining_run_gets_loss_lr_and_throughput_plots(tmp_path):
    history = [{"loss": 9.0 - s / 100, "learning_rate": 1e-3 * (1 - s / 100), "tokens_per_second": 4000.0 + s,
                "step": s} for s in range(5, 100, 5)] + [{"eval_loss": 8.5, "step": 50}, {"eval_loss": 8.2, "step": 95}]
    (tmp_path / "log_history.json").write_text(json.dumps(history))
    (tmp_path / "metrics.json").write_text(json.dumps({"steps": 95, "tokens_seen": 95 * 8192}))
    written = plot_run(tmp_path)
    assert sorted(p.name for p in written) == ["learning_rate.png", "loss.png", "throughput.png"]
    assert all(p.parent == tmp_path / "plots" and p.read_bytes()[:8] == PNG for p in written)


def test_grid_directory_gets_its_grid_plot(tmp_path):
    runs = [{"seed": s, "learning_rate": 1e-3, "eval": {"dev": {"accuracy": a}}} for s, a in ((1, 0.7), (2, 0.74))]
    (tmp_path / "metrics.json").write_text(json.dumps({
        "selection": {"split": "dev", "metric": "accuracy", "grid": {"0.0001": 0.6, "0.001": 0.7},
                      "best_learning_rate": 0.001}, "seeds": [1, 2], "report_split": "dev", "runs": runs,
        "summary": {"dev": {"accuracy": {"mean": 0.72, "std": 0.028, "n": 2}}}}))
    assert [p.name for p in plot_run(tmp_path)] == ["grid.png"]


def test_a_run_without_a_log_draws_nothing(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    assert plot_run(tmp_path) == [] and not (tmp_path / "plots").exists()


def test_fine_tuning_keeps_log_history_and_tensorboard_events(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    events = work / "runs" / "Nov28_20-00-00_host" / "events.out.tfevents.1.host"
    events.parent.mkdir(parents=True)
    events.write_bytes(b"tb")
    out.mkdir()
    keep_training_logs(work, out, [{"loss": 0.69, "step": 10}])
    assert json.loads((out / "log_history.json").read_text()) == [{"loss": 0.69, "step": 10}]
    assert (out / "tensorboard" / "Nov28_20-00-00_host" / "events.out.tfevents.1.host").read_bytes() == b"tb"


def test_a_cached_step_imports_neither_evaluate_nor_matplotlib(tmp_path, wiki_slice):
    """A finished step run again answers at once: no plotting, no metric modules imported."""
    import subprocess
    import sys

    import yaml

    repo = Path(__file__).resolve().parent.parent
    cfg = tmp_path / "tok.yaml"
    cfg.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "tok"), "data": {"path": str(wiki_slice)},
                                   "tokenizer": {"vocab_size": 1200}, "held_out_fraction": 0.1}))
    code = ("import sys\nfrom nlp_ssl.cli import main\n"
            f"rc = main(['train-tokenizer', {str(cfg)!r}])\n"
            "print('RC', rc, [m for m in ('evaluate', 'matplotlib') if m in sys.modules])\n")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, timeout=300)
    assert "RC 0" in first.stdout, first.stderr[-2000:]
    assert (tmp_path / "tok" / "README.md").is_file()  # the tokenizer's card
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, timeout=300)
    assert "nothing to do" in again.stdout and "RC 0 []" in again.stdout, again.stdout + again.stderr
