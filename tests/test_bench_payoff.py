"""benchmarks/payoff.py and benchmarks/figures.py: study plans (fair by construction, every config valid), the
pairing of scratch and pretrained runs, and the spread over pretraining runs, computed by hand."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    for name in ("payoff", "figures", "harness"):
        sys.modules.pop(name, None)
    import figures
    import payoff

    return payoff, figures


def _cls_run(root: Path, name: str, init: str, per_seed: list[float], labels: int | None = 1000, **extra):
    run = root / name
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        **extra, "init": init, "max_train_samples": labels, "report_split": "dev",
        "selection": {"metric": "accuracy", "grid": {"0.001": 0.7}, "best_learning_rate": 1e-3, "oracle": False},
        "summary": {"dev": {"accuracy": {"mean": statistics.mean(per_seed), "std": statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0,
                                         "n": len(per_seed)}}},
        "runs": [{"eval": {"dev": {"accuracy": a}}} for a in per_seed]}))


def _qa_run(root: Path, name: str, init: str, f1: float, seed: int = 1):
    run = root / name
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "init": init, "seed": seed, "steps": 1600, "train_features": 100, "train_features_per_second": 10.0,
        "report_split": "dev", "eval": {"dev": {"exact_match": f1 / 2, "f1": f1, "eval_features_per_second": 5.0},
                                        "selection": {"exact_match": 1.0, "f1": 2.0, "eval_features_per_second": 5.0}}}))


def test_scratch_and_pretrained_runs_are_paired_with_their_difference_against_the_spread(bench, tmp_path):
    _, figures = bench
    _cls_run(tmp_path, "sst2-1000-scratch", "scratch", [0.66, 0.67, 0.68])      # 67.0 ± 1.0
    _cls_run(tmp_path, "sst2-1000-pretrained", "pretrained", [0.71, 0.72, 0.73])  # 72.0 ± 1.0: +5.0 > 2 x 1.0
    _cls_run(tmp_path, "imdb-1000-scratch", "scratch", [0.70, 0.74, 0.78])       # 74.0 ± 4.0
    _cls_run(tmp_path, "imdb-1000-pretrained", "pretrained", [0.75, 0.76, 0.77])  # 76.0 ± 1.0: +2.0 < 2 x 4.0
    _cls_run(tmp_path, "sst2-100-scratch", "scratch", [0.5, 0.5, 0.5])           # no pretrained counterpart: no pair
    tables, refused, _ = figures.tabulate(tmp_path)
    rows = {r[0]: r for r in tables["pairs"][1]}
    assert refused == [] and set(rows) == {"sst2-1000", "imdb-1000"}
    assert rows["sst2-1000"][1:] == ["pretrained", "dev accuracy", "67.0", "72.0", "+5.0", "yes (2 x 1.0)"]
    assert rows["imdb-1000"][5:] == ["+2.0", "no (2 x 4.0)"]
    cls = {r[0]: r for r in tables["classification"][1]}
    assert cls["sst2-1000-pretrained"][4:6] == ["72.0 ± 1.0", "71.0 72.0 73.0"]


def test_one_seed_sides_and_qa_pairs_claim_no_spread_and_mismatched_pairs_are_refused(bench, tmp_path):
    _, figures = bench
    _cls_run(tmp_path, "sst2-scratch", "scratch", [0.80, 0.81, 0.82])
    _cls_run(tmp_path, "sst2-pretrained", "pretrained", [0.83])  # one seed: its std of 0 is no spread
    _qa_run(tmp_path, "squad-scratch", "scratch", 8.0)
    _qa_run(tmp_path, "squad-pretrained", "pretrained", 12.5)
    tables, refused, _ = figures.tabulate(tmp_path)
    rows = {r[0]: r for r in tables["pairs"][1]}
    assert rows["sst2"][5:] == ["+2.0", "-"] and refused == []
    assert rows["squad"][1:] == ["pretrained", "dev F1", "8.0", "12.5", "+4.5", "-"]  # the reported split, not selection
    qa = tmp_path / "squad-pretrained" / "metrics.json"
    qa.write_text(json.dumps({**json.loads(qa.read_text()), "seed": 2}))  # another seed than scratch's
    assert ["squad-scratch and squad-pretrained are not comparable" in r for r in figures.tabulate(tmp_path)[1]] == [True]


def test_a_qa_grid_is_tabulated_in_points_as_squad_scores_are(bench, tmp_path):
    """QA grids (rates x seeds) write the classification summary's shape, but SQuAD F1 is in points already:
    scaling it by 100 would print 571.5 for an F1 of 5.7."""
    _, figures = bench
    for name, per_seed in (("squad-scratch", [5.0, 6.0]), ("squad-pretrained", [7.0, 9.0])):
        _cls_run(tmp_path, name, name.split("-")[1], per_seed, labels=None)
        m = json.loads((tmp_path / name / "metrics.json").read_text())
        m["selection"]["metric"], m["summary"] = "f1", {"dev": {"f1": m["summary"]["dev"]["accuracy"]}}
        m["runs"] = [{"eval": {"dev": {"f1": v}}} for v in per_seed]
        (tmp_path / name / "metrics.json").write_text(json.dumps(m))
        (tmp_path / name / "config.yaml").write_text("task:\n  type: extractive_qa\n")
    tables, _, _ = figures.tabulate(tmp_path)
    assert [r[4] for r in tables["classification"][1]] == ["8.0 ± 1.4", "5.5 ± 0.7"]
    assert tables["pairs"][1] == [["squad", "pretrained", "dev f1", "5.5", "8.0", "+2.5", "no (2 x 1.4)"]]


def test_every_encoder_is_paired_with_its_task_scratch_run_by_the_longest_task_prefix(bench, tmp_path):
    _, figures = bench
    _cls_run(tmp_path, "sst2-scratch", "scratch", [0.80, 0.80, 0.80])
    _cls_run(tmp_path, "sst2-mlm-token", "pretrained", [0.81, 0.81, 0.81])
    _cls_run(tmp_path, "sst2-1000-scratch", "scratch", [0.66, 0.67, 0.68])
    _cls_run(tmp_path, "sst2-1000-electra", "pretrained", [0.70, 0.70, 0.70])
    _cls_run(tmp_path, "sst2-1000-mlm-token", "pretrained", [0.69, 0.69, 0.69])
    pairs = [(r[0], r[1], r[5]) for r in figures.tabulate(tmp_path)[0]["pairs"][1]]
    assert sorted(pairs) == [("sst2", "mlm-token", "+1.0"), ("sst2-1000", "electra", "+3.0"),
                             ("sst2-1000", "mlm-token", "+2.0")]


def test_a_run_is_never_paired_with_a_shorter_task_set_up_differently_nor_a_method_with_scratch(bench, tmp_path):
    """Without sst2-1000-scratch, sst2-1000-pretrained (1,000 labels) must not pair with sst2-scratch (all labels):
    it is refused by name, the tables still come out; self-training is a method, not an encoder, and is not paired."""
    _, figures = bench
    _cls_run(tmp_path, "sst2-scratch", "scratch", [0.80, 0.80, 0.80], labels=None)
    _cls_run(tmp_path, "sst2-1000-pretrained", "pretrained", [0.70, 0.70, 0.70], labels=1000)
    _cls_run(tmp_path, "imdb-100-scratch", "scratch", [0.6, 0.6, 0.6], labels=100)
    _cls_run(tmp_path, "imdb-100-self-training", "pretrained", [0.7, 0.7, 0.7], labels=100,
             self_training_rounds=[{"round": 1, "pseudo_labels": [10], "summary": {"dev": {"accuracy": {
                 "mean": 0.7, "std": 0.0}}}}])
    tables, refused, _ = figures.tabulate(tmp_path)
    assert len(refused) == 1 and "sst2-scratch and sst2-1000-pretrained are not comparable" in refused[0]
    assert "pairs" not in tables and "sst2-1000-pretrained" in [r[0] for r in tables["classification"][1]]
    assert tables["self_training"][1] == [["imdb-100-self-training", 1, "10", "70.0 ± 0.0"]]


def test_zero_shot_and_pretraining_runs_are_tabulated_and_the_cli_writes_provenance(bench, tmp_path):
    payoff, _ = bench
    for name, rho in (("sts-scratch", 0.58), ("sts-electra", 0.61)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({
            "model": f"runs/{name}", "task": "stsb-zero-shot", "pooling": "mean",
            "eval": {"dev": {"spearmanr": rho, "pearson": rho - 0.05, "pairs": 1500}}}))
    prov = {"git": {"commit": "abc", "dirty": False}}
    (tmp_path / "mlm").mkdir()
    (tmp_path / "mlm" / "metrics.json").write_text(json.dumps({
        "steps": 2500, "tokens_seen": 20480000, "tokens_per_second_mean": 9133.4, "train_runtime_s": 600.0,
        "eval_loss": 3.43, "eval_mlm_accuracy": 0.387, "provenance": prov}))
    out = tmp_path / "f.json"
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "payoff.py"), "tabulate", str(tmp_path), "--encoder",
                          str(tmp_path / "mlm"), "--json", str(out)], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    record = json.loads(out.read_text())
    assert record["tables"]["pairs"]["rows"] == [["sts", "electra", "dev Spearman", "58.0", "61.0", "+3.0", "-"]]
    assert [r[0] for r in record["tables"]["zero_shot"]["rows"]] == ["sts-electra", "sts-scratch"]
    assert record["tables"]["pretraining"]["rows"] == [["mlm", 2500, 20480000, 9133, 10.0,
                                                        "loss 3.43, mlm_accuracy 0.387"]]
    assert record["encoder"]["steps"] == 2500 and record["runs"]["mlm"]["provenance"] == prov


def test_spread_over_pretraining_runs_and_finetune_seeds(bench):
    _, figures = bench
    encoders = {"tokens-seed1": {"budget": "tokens"}, "tokens-seed2": {"budget": "tokens"},
                "time-seed1": {"budget": "time"}, "time-seed2": {"budget": "time"}}
    scores = {"t": {"scratch": [50.0, 52.0, 54.0],            # mean 52, std 2
                    "tokens-seed1": [60.0, 62.0, 64.0],       # run mean 62, within-run std 2
                    "tokens-seed2": [66.0, 66.0, 66.0],       # run mean 66, within-run std 0
                    "time-seed1": [50.0, 54.0, 58.0],         # run mean 54, within-run std 4
                    "time-seed2": [54.0, 54.0, 54.0]}}        # run mean 54
    s = figures.spread(encoders, scores)["t"]
    assert s["scratch"]["mean"] == 52 and s["scratch"]["std_over_finetune_seeds"] == 2
    tok = s["tokens"]
    assert tok["mean"] == 64 and tok["std_over_pretraining_runs"] == pytest.approx(2 ** 0.5 * 2)  # stdev(62, 66)
    assert tok["std_over_finetune_seeds_within_run"] == 1  # mean of 2 and 0
    assert tok["minus_scratch"] == 12 and tok["spread_bar"] == pytest.approx(2 * 2 * 2 ** 0.5)
    assert tok["exceeds_spread"] is True  # 12 > 5.66
    tim = s["time"]
    assert tim["mean"] == 54 and tim["std_over_pretraining_runs"] == 0 and tim["minus_scratch"] == 2
    assert tim["spread_bar"] == 4 and tim["exceeds_spread"] is False  # 2 < 2 x scratch's std 2
    assert s["tokens_minus_time"]["difference"] == 10 and s["tokens_minus_time"]["exceeds_spread"] is True


def test_spread_bar_counts_finetune_seeds_of_the_pretrained_side(bench):
    """Pretraining runs whose means agree (std 0) still vary by fine-tuning seed (std 4): a 1-point difference
    from scratch is within that, whatever the spread of the run means."""
    _, figures = bench
    encoders = {"time-seed1": {"budget": "time"}, "time-seed2": {"budget": "time"}}
    scores = {"t": {"scratch": [55.0, 55.0, 55.0], "time-seed1": [50.0, 54.0, 58.0], "time-seed2": [50.0, 54.0, 58.0]}}
    tim = figures.spread(encoders, scores)["t"]["time"]
    assert tim["std_over_pretraining_runs"] == 0 and tim["std_over_finetune_seeds_within_run"] == 4
    assert tim["minus_scratch"] == -1 and tim["spread_bar"] == 8 and tim["exceeds_spread"] is False


def test_report_scores_reads_the_reported_split(bench):
    _, figures = bench
    m = {"report_split": "test", "selection": {"metric": "accuracy"},
         "runs": [{"eval": {"test": {"accuracy": 0.5}, "dev": {"accuracy": 0.9}}},
                  {"eval": {"test": {"accuracy": 0.75}, "dev": {"accuracy": 0.1}}}]}
    assert figures.report_scores(m) == [50.0, 75.0]


def test_every_command_runs_with_the_studys_threads(bench, monkeypatch, tmp_path):
    """Fine-tuning has no thread setting, so the environment pins it: the figures ran at the study's threads,
    whatever the caller's environment or the machine's core count."""
    payoff, _ = bench
    seen = []
    monkeypatch.setattr(payoff.subprocess, "run", lambda cmd, **kw: seen.append((cmd, kw["env"])) or
                        subprocess.CompletedProcess(cmd, 0))
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    study = payoff.Study(tmp_path, [], threads=1)
    payoff.execute(payoff.nlp("ft", "finetune", "c.yaml", "seed=[1]"), study, False, tmp_path)
    assert seen[0][1]["OMP_NUM_THREADS"] == "1" and seen[0][0][-3:] == ["finetune", "c.yaml", "seed=[1]"]


def study_of(payoff, study: str, *flags: str):
    """A study's plan, built the way `payoff.py STUDY FLAGS` builds it (nothing runs: --dry-run)."""
    captured = {}
    original = payoff.STUDIES[study]
    payoff.STUDIES[study] = lambda a: captured.setdefault("study", original(a))
    try:
        payoff.main([study, "--dry-run", *flags])
    finally:
        payoff.STUDIES[study] = original
    return captured["study"]


def study_steps(payoff, study: str, *flags: str) -> dict:
    return {s.name: s for stage in study_of(payoff, study, *flags).stages for lane in stage.lanes for s in lane}


def test_objectives_wiki_gives_sentence_order_a_control_on_the_same_blocks_and_the_causal_lm_no_cls_probes(bench):
    """mlm_sop's effect is confounded with the document layout unless plain MLM runs on the same blocks; a causal
    encoder's [CLS] attends to itself alone (the saved config keeps is_decoder), so its SST-2 classifier and its
    [CLS] STS vector would score it at chance rather than measure it."""
    payoff, _ = bench
    steps = study_steps(payoff, "objectives-wiki", "--minutes", "0.1", "--sst2-steps", "3")
    sop, docs = steps["mlm_sop"].data, steps["mlm_docs"].data
    assert sop["objective"] == {"task": "mlm", "sentence_order": True} and docs["objective"] == {"task": "mlm"}
    assert sop["data"] == docs["data"] != steps["mlm"].data["data"]
    pretrains = [s.data for s in steps.values() if s.argv[0] == "pretrain"]
    assert {d["train"]["max_time_minutes"] for d in pretrains} == {0.1} and {d["model"]["preset"] for d in pretrains} == {"tiny"}
    assert steps["simcse"].data["model"]["init_from"] == steps["mlm"].data["output_dir"]
    assert "sst2-clm" not in steps and "sts-cls-clm" not in steps and "sts-mean-clm" in steps
    assert "sst2-mlm" in steps and "sts-cls-mlm" in steps


def test_side_by_side_pairs_share_a_stage_and_scratch_is_the_same_shape(bench):
    payoff, _ = bench
    stages = {s.name: [[step.name for step in lane] for lane in s.lanes] for s in study_of(payoff, "objectives").stages}
    assert stages["pair2"] == [["mlm-span"], ["electra"]] and stages["pair3"] == [["mlm-docs"], ["mlm-sop"]]
    lanes = stages["probes"]
    assert "sst2-1000-scratch" in lanes[0] and "sst2-1000-electra" in lanes[1]


@pytest.mark.parametrize("quick", [False, True])
def test_every_study_plans_commands_whose_configs_are_valid(bench, quick, capsys):
    """Every command of every study (and of its --quick check) is checked as `nlp-ssl CMD --print-config` would:
    a renamed or misspelled key in a study fails here, not hours into it."""
    payoff, _ = bench
    for study in payoff.STUDIES:
        assert payoff.main([study, "--dry-run", *(["--quick"] if quick else [])]) == 0, capsys.readouterr().out[-3000:]


def test_a_study_that_plans_a_misspelled_key_is_reported(bench):
    payoff, _ = bench
    problem = payoff.check(payoff.nlp("x", "pretrain", payoff.RECIPE, "train.max_tokns=1"), False)
    assert problem.startswith("x: ConfigError") and "train.max_tokns" in problem


def test_spread_quick_runs_end_to_end(bench, tmp_path):
    """The smallest whole study: a tokenizer, IMDB blocks, 2 x 2 tiny pretraining runs, 5 fine-tuning runs, and the
    spread tables in a results file with its provenance."""
    payoff, _ = bench
    assert payoff.main(["spread", "--quick", "--out", str(tmp_path / "spread")]) == 0
    record = json.loads((REPO / "runs/bench/quick/spread.json").read_text())
    assert record["quick"] is True and record["provenance"]["git"] and record["out"] == str(tmp_path / "spread")
    assert sorted(record["encoders"]) == ["time-seed1", "time-seed2", "tokens-seed1", "tokens-seed2"]
    task = record["spread"]["sst2-100"]
    assert len(task["scratch"]["per_seed"]) == 2 and set(task) >= {"tokens", "time", "tokens_minus_time"}
    assert [r[1] for r in record["tables"]["spread"]["rows"]][:3] == ["scratch", "pretrained (tokens budget)",
                                                                      "pretrained (time budget)"]
