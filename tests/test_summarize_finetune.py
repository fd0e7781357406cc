"""benchmarks/summarize_finetune.py --json: the figures' table with every run's and the encoder's provenance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_figures_json_carries_each_runs_provenance_and_the_encoder(tmp_path):
    prov = {"git": {"commit": "abc", "dirty": False}, "machine": {"cores": 2, "load_average_start": [1.0, 1.0, 1.0],
                                                                "load_average_end": [2.0, 2.0, 2.0]}}
    run = tmp_path / "figures" / "imdb-100-pretrained"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "init": "pretrained", "max_train_samples": 100, "report_split": "test",
        "selection": {"metric": "accuracy", "grid": {"0.0001": 0.6}, "best_learning_rate": 1e-4, "oracle": False},
        "summary": {"test": {"accuracy": {"mean": 0.6, "std": 0.01, "n": 2}}},
        "runs": [{"eval": {"test": {"accuracy": 0.59}}}, {"eval": {"test": {"accuracy": 0.61}}}],
        "provenance": prov}))
    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "metrics.json").write_text(json.dumps({"steps": 2500, "tokens_seen": 20480000, "eval_loss": 5.94,
                                                  "provenance": prov}))
    (enc / "run_info.json").write_text(json.dumps({"git": {"commit": "b36293e", "dirty": False}}))
    out = tmp_path / "figures.json"
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "summarize_finetune.py"), str(tmp_path / "figures"),
                          "--encoder", str(enc), "--json", str(out)], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "60.0 ± 1.0" in res.stdout and "59.0 61.0" in res.stdout
    record = json.loads(out.read_text())
    assert record["runs"]["imdb-100-pretrained"]["provenance"] == prov
    assert record["encoder"]["steps"] == 2500 and record["encoder"]["tokens_seen"] == 20480000
    assert record["encoder"]["run_info"]["git"] == {"commit": "b36293e", "dirty": False}
    assert record["tables"]["classification"]["rows"][0][4] == "60.0 ± 1.0"
    assert len(record["tabulated_at"]["git"]) == 2


def _cls_run(root: Path, name: str, init: str, per_seed: list[float], labels: int | None = 1000, **extra):
    import statistics

    run = root / name
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        **extra, "init": init, "max_train_samples": labels, "report_split": "dev",
        "selection": {"metric": "accuracy", "grid": {"0.001": 0.7}, "best_learning_rate": 1e-3, "oracle": False},
        "summary": {"dev": {"accuracy": {"mean": statistics.mean(per_seed), "std": statistics.stdev(per_seed), "n": 3}}},
        "runs": [{"eval": {"dev": {"accuracy": a}}} for a in per_seed]}))


def test_scratch_and_pretrained_runs_are_paired_with_their_difference_against_the_spread(tmp_path):
    root = tmp_path / "recipe"
    _cls_run(root, "sst2-1000-scratch", "scratch", [0.66, 0.67, 0.68])      # 67.0 ± 1.0
    _cls_run(root, "sst2-1000-pretrained", "pretrained", [0.71, 0.72, 0.73])  # 72.0 ± 1.0: +5.0 > 2 x 1.0
    _cls_run(root, "imdb-1000-scratch", "scratch", [0.70, 0.74, 0.78])       # 74.0 ± 4.0
    _cls_run(root, "imdb-1000-pretrained", "pretrained", [0.75, 0.76, 0.77])  # 76.0 ± 1.0: +2.0 < 2 x 4.0
    _cls_run(root, "sst2-100-scratch", "scratch", [0.5, 0.5, 0.5])           # no pretrained counterpart: no pair
    out = tmp_path / "f.json"
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "summarize_finetune.py"), str(root), "--json", str(out)],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = {r[0]: r for r in json.loads(out.read_text())["tables"]["pairs"]["rows"]}
    assert set(rows) == {"sst2-1000", "imdb-1000"}
    assert rows["sst2-1000"][1] == "pretrained"
    assert rows["sst2-1000"][3:6] == ["67.0", "72.0", "+5.0"] and rows["sst2-1000"][6].startswith("yes")
    assert rows["imdb-1000"][5] == "+2.0" and rows["imdb-1000"][6] == "no (2 x 4.0)"


def _qa_run(root: Path, name: str, init: str, f1: float, seed: int = 1):
    run = root / name
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "init": init, "seed": seed, "steps": 1600, "train_features": 100, "train_features_per_second": 10.0,
        "report_split": "dev", "eval": {"dev": {"exact_match": f1 / 2, "f1": f1, "eval_features_per_second": 5.0},
                                        "selection": {"exact_match": 1.0, "f1": 2.0, "eval_features_per_second": 5.0}}}))


def test_one_seed_sides_and_qa_pairs_claim_no_spread_and_mismatched_pairs_are_refused(tmp_path):
    root = tmp_path / "recipe"
    _cls_run(root, "sst2-scratch", "scratch", [0.80, 0.81, 0.82])
    one = root / "sst2-pretrained"
    _cls_run(root, "sst2-pretrained", "pretrained", [0.83, 0.84, 0.85])
    m = json.loads((one / "metrics.json").read_text())
    m["summary"]["dev"]["accuracy"].update(std=0.0, n=1)  # one seed: its std of 0 is no spread
    m["runs"] = m["runs"][:1]
    (one / "metrics.json").write_text(json.dumps(m))
    _qa_run(root, "squad-scratch", "scratch", 8.0)
    _qa_run(root, "squad-pretrained", "pretrained", 12.5)
    out = tmp_path / "f.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "summarize_finetune.py"), str(root), "--json", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = {r[0]: r for r in json.loads(out.read_text())["tables"]["pairs"]["rows"]}
    assert rows["sst2"][5:] == ["+3.0", "-"]
    assert rows["squad"][1:] == ["pretrained", "dev F1", "8.0", "12.5", "+4.5", "-"]  # the reported split, not selection
    qa = root / "squad-pretrained" / "metrics.json"
    qa.write_text(json.dumps({**json.loads(qa.read_text()), "seed": 2}))  # another seed than scratch's
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert res.returncode != 0 and "not comparable" in res.stderr


def test_every_encoder_is_paired_with_its_task_scratch_run_by_the_longest_task_prefix(tmp_path):
    root = tmp_path / "objectives"
    _cls_run(root, "sst2-scratch", "scratch", [0.80, 0.80, 0.80])
    _cls_run(root, "sst2-mlm-token", "pretrained", [0.81, 0.81, 0.81])
    _cls_run(root, "sst2-1000-scratch", "scratch", [0.66, 0.67, 0.68])
    _cls_run(root, "sst2-1000-electra", "pretrained", [0.70, 0.70, 0.70])
    _cls_run(root, "sst2-1000-mlm-token", "pretrained", [0.69, 0.69, 0.69])
    out = tmp_path / "f.json"
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "summarize_finetune.py"), str(root), "--json", str(out)],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    pairs = [(r[0], r[1], r[5]) for r in json.loads(out.read_text())["tables"]["pairs"]["rows"]]
    assert sorted(pairs) == [("sst2", "mlm-token", "+1.0"), ("sst2-1000", "electra", "+3.0"),
                             ("sst2-1000", "mlm-token", "+2.0")]


def test_zero_shot_sts_runs_are_tabulated_and_paired(tmp_path):
    root = tmp_path / "objectives"
    for name, rho in (("sts-scratch", 0.58), ("sts-electra", 0.61)):
        (root / name).mkdir(parents=True)
        (root / name / "metrics.json").write_text(json.dumps({
            "model": f"runs/{name}", "task": "stsb-zero-shot", "pooling": "mean",
            "eval": {"dev": {"spearmanr": rho, "pearson": rho - 0.05, "pairs": 1500}}}))
    out = tmp_path / "f.json"
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "summarize_finetune.py"), str(root), "--json", str(out)],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    tables = json.loads(out.read_text())["tables"]
    assert [r[0] for r in tables["zero_shot"]["rows"]] == ["sts-electra", "sts-scratch"]
    assert tables["pairs"]["rows"] == [["sts", "electra", "dev Spearman", "58.0", "61.0", "+3.0", "-"]]


def test_a_run_is_never_paired_with_a_shorter_task_set_up_differently_nor_a_method_with_scratch(tmp_path):
    """Without sst2-1000-scratch, sst2-1000-pretrained (1,000 labels) must not pair with sst2-scratch (all labels):
    it is refused by name, the tables still print; self-training is a method, not an encoder, and is not paired."""
    root = tmp_path / "runs"
    _cls_run(root, "sst2-scratch", "scratch", [0.80, 0.80, 0.80], labels=None)
    _cls_run(root, "sst2-1000-pretrained", "pretrained", [0.70, 0.70, 0.70], labels=1000)
    _cls_run(root, "imdb-100-scratch", "scratch", [0.6, 0.6, 0.6], labels=100)
    _cls_run(root, "imdb-100-self-training", "pretrained", [0.7, 0.7, 0.7], labels=100,
             self_training_rounds=[{"round": 1, "pseudo_labels": [10], "summary": {"dev": {"accuracy": {
                 "mean": 0.7, "std": 0.0}}}}])
    out = tmp_path / "f.json"
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "summarize_finetune.py"), str(root), "--json", str(out)],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode != 0 and "sst2-scratch and sst2-1000-pretrained are not comparable" in res.stderr
    assert "sst2-1000-pretrained" in res.stdout  # the run's own row is still printed
    assert "pairs" not in json.loads(out.read_text())["tables"]  # nothing paired: neither mismatch nor method
