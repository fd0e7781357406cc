"""benchmarks/bench_objectives.py design: every variant on the same tokenizer, budget and architecture, and the
sentence-order variant compared with plain MLM on the same (document-layout) blocks."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_bench(monkeypatch, tmp_path, argv):
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
