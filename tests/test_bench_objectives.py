"""benchmarks/bench_objectives.py design: every variant on the same tokenizer, budget and architecture, and the
sentence-order variant compared with plain MLM on the same (document-layout) blocks."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_bench(monkeypatch, tmp_path, argv, **patches):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    sys.modules.pop("bench_objectives", None)
    import bench_objectives as b

    runs = []
    monkeypatch.setattr(b, "RESULTS", tmp_path)
    monkeypatch.setattr(b, "bench_tokenizer", lambda vocab: tmp_path / "tok")
    monkeypatch.setattr(b, "prepare", lambda tok, layout, block_size, docs: tmp_path / f"blocks-{layout}-{tok.name}")

    def pretrain(name, blocks, out, args, init_from=None):
        runs.append({"name": name, "blocks": blocks, "objective": b.OBJECTIVES[name], "minutes": args.minutes,
                     "preset": args.preset, "init_from": init_from})
        return {"steps": 1, "tokens_per_second_mean": 1.0, "wall_seconds": 1.0}

    monkeypatch.setattr(b, "pretrain", pretrain)
    monkeypatch.setattr(b, "sts", lambda out: {"cls": 0.0, "mean": 0.0})
    for name, value in patches.items():
        monkeypatch.setattr(b, name, value)
    monkeypatch.setattr(sys, "argv", ["bench_objectives.py", *argv])
    b.main()
    return runs


def test_sentence_order_has_a_plain_mlm_control_on_the_same_blocks(monkeypatch, tmp_path):
    runs = run_bench(monkeypatch, tmp_path, ["--minutes", "0.1"])
    sop = [r for r in runs if r["objective"].get("sentence_order")]
    assert len(sop) == 1
    controls = [r for r in runs if r["objective"] == {"task": "mlm"} and r["blocks"] == sop[0]["blocks"]]
    assert controls, "mlm_sop's effect is confounded with the document layout: no plain MLM on the same blocks"
    assert {r["minutes"] for r in runs} == {0.1} and {r["preset"] for r in runs} == {"tiny"}
    assert [r["init_from"] for r in runs if r["name"] == "simcse"] == [str(tmp_path / "objectives-tiny-0.1min" / "mlm")]


def test_no_cls_probe_figures_for_the_causal_lm(monkeypatch, tmp_path):
    """A causal encoder's [CLS] attends to itself alone (the saved config keeps is_decoder), so its SST-2
    classifier and its [CLS] STS vector see no text: such figures would rank clm at chance, not measure it."""
    import json

    tuned = []
    runs = run_bench(monkeypatch, tmp_path, ["--minutes", "0.1", "--variants", "mlm,clm", "--sst2-steps", "3"],
                     sst2=lambda out, work, steps: tuned.append(out) or 0.9)
    assert [r["name"] for r in runs] == ["mlm", "clm"]
    assert [p.name for p in tuned] == ["mlm"]
    results = json.loads((tmp_path / "objectives-tiny-0.1min.json").read_text())["results"]
    assert results["clm"]["sst2_dev_accuracy"] is None and results["clm"]["sts_zero_shot"]["cls"] is None
    assert results["clm"]["sts_zero_shot"]["mean"] == 0.0 and results["mlm"]["sst2_dev_accuracy"] == 0.9
