"""benchmarks/harness.py and benchmarks/tables.py: paired ratios, interleaving, results files with provenance, and
the documents' tables generated from the results files (and up to date)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def harness(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    for name in ("harness", "tables"):
        sys.modules.pop(name, None)
    import harness
    import tables

    return harness, tables


def test_ratio_is_the_median_of_per_repeat_ratios_with_their_range(harness):
    h, _ = harness
    # per repeat: 2.0, 1.5, 3.0 -> median 2.0, range 1.5-3.0 (not the ratio of medians, 12 / 6 = 2.0 by chance)
    assert h.ratio([4.0, 6.0, 12.0], [2.0, 4.0, 4.0]) == "2.00x (1.50-3.00)"
    assert h.ratio([1.0, 2.0], [2.0, 2.0], higher_is_better=False) == "1.50x (1.00-2.00)"  # times: baseline / ours


def test_interleaved_runs_every_row_once_per_repeat(harness):
    h, _ = harness
    order = []
    out = h.interleaved({"a": lambda: order.append("a") or 1.0, "b": lambda: order.append("b") or 2.0}, 3)
    assert order == ["a", "b"] * 3 and out == {"a": [1.0] * 3, "b": [2.0] * 3}


def test_results_file_records_its_provenance_and_renders_as_markdown(harness, monkeypatch, tmp_path):
    h, _ = harness
    monkeypatch.setattr(h, "CACHE", tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench_x.py", "--quick", "hub_token=hf_" + "a" * 30])
    path = h.save_results("bench_x", "a title", {"speed": (["row", "tokens/s", "ratio"], [["ours", 12345, "1.50x (1.2-1.8)"],
                                                                                         ["ref", 1.5, None]])}, quick=True)
    assert path == tmp_path / "quick" / "bench_x.json"  # a check never replaces a result
    record = json.loads(path.read_text())
    assert record["command"] == "python bench_x.py --quick hub_token=<redacted>"
    assert set(record["provenance"]) >= {"git", "versions", "machine", "started", "ended"}
    assert set(record["provenance"]["machine"]) >= {"load_average_start", "load_average_end", "cores"}
    assert h.markdown(record, "speed") == ("| row | tokens/s | ratio |\n|---|---|---|\n| ours | 12,345 | 1.50x (1.2-1.8) |\n"
                                           "| ref | 1.50 | - |")
    with pytest.raises(KeyError, match="no table 'other'.*speed"):
        h.markdown(record, "other")


def test_table_blocks_are_filled_from_their_results_file(harness, tmp_path):
    _, tables = harness
    (tmp_path / "study.json").write_text(json.dumps({"tables": {"t": {"headers": ["a", "b"], "rows": [["1", 2]]}}}))
    text = "intro\n<!-- table: study/t -->\n| stale |\n<!-- /table -->\nafter\n"
    assert tables.render(text, results=tmp_path) == "intro\n<!-- table: study/t -->\n| a | b |\n|---|---|\n| 1 | 2 |\n<!-- /table -->\nafter\n"
    with pytest.raises(SystemExit, match="block missing/t: no "):
        tables.render("<!-- table: missing/t -->\n<!-- /table -->", results=tmp_path)


def test_the_documents_tables_are_up_to_date_with_the_results_files(harness):
    """Every figure table in the documents is generated: `python benchmarks/tables.py` after a benchmark."""
    _, tables = harness
    assert tables.main(["--check"]) == 0
    readme = (REPO / "benchmarks" / "README.md").read_text()
    assert readme.count("<!-- table: ") >= 8


def test_every_results_file_says_where_its_figures_come_from(harness):
    """A figure without its command, date, machine and load cannot be judged: every results file carries them (a
    transcribed one as the measurement recorded them)."""
    h, _ = harness
    files = sorted(h.RESULTS.glob("*.json"))
    assert files
    for path in files:
        record = json.loads(path.read_text())
        prov = record["provenance"]
        assert record["command"] and record["quick"] is False and record["tables"], path.name
        assert ("machine" in prov and ("load_average" in prov or "load_average_start" in prov["machine"])), path.name
        assert "measured" in prov or "started" in prov, path.name
        for name in record["tables"]:
            h.markdown(record, name)


def test_figures_of_a_hand_typed_table_are_checked_against_the_results_to_the_digits_shown(harness, tmp_path):
    _, tables = harness
    (tmp_path / "study.json").write_text(json.dumps({"tables": {"t": {"headers": ["a"], "rows": [["81.46 ± 0.6"], [8.15]]}}}))
    text = ("| encoder | acc |\n|---|---|\n| recipe | 81.5 ± 0.6 |\n| scratch | 8.2 / 7.9 |\n"
            "<!-- table: study/t -->\n| 99.9 |\n<!-- /table -->\n")  # a generated block is not checked this way
    assert tables.unsourced(text, results=tmp_path) == [("| scratch | 8.2 / 7.9 |", ["7.9"])]


def test_every_figure_in_the_readme_and_results_page_has_a_results_file(harness):
    """A hand-typed table in README.md or docs/results.md may only show figures some results file holds."""
    _, tables = harness
    assert tables.main(["--sources"]) == 0
