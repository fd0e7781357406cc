"""The run-directory layout: cell names round-trip, and a finished run reads back as the commands wrote it, with
errors that name the broken file."""

from __future__ import annotations

import json

import pytest

from nlp_ssl.errors import DataError
from nlp_ssl.layout import (CONFIG_FILE, METRICS_FILE, RUN_INFO_FILE, TOKENIZER_SUMMARY_FILE, cell_name, grid_cells,
                            is_run, parse_cell, read_json, read_jsonl, read_run)


def test_cell_names_round_trip_and_sort_by_rate_then_seed(tmp_path):
    for lr, seed in ((3e-4, 2), (1e-4, 10), (1e-4, 2), (3e-5, 1)):
        assert parse_cell(cell_name(lr, seed)) == (lr, seed)
        (tmp_path / cell_name(lr, seed)).mkdir()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "lr-seed1").mkdir()  # not a cell
    assert [p.name for p in grid_cells(tmp_path)] == ["lr3e-05-seed1", "lr0.0001-seed2", "lr0.0001-seed10",
                                                      "lr0.0003-seed2"]
    assert parse_cell("lrx-seed1") is None and grid_cells(tmp_path / "missing") == []


def test_read_json_names_a_truncated_or_missing_file(tmp_path):
    p = tmp_path / METRICS_FILE
    p.write_text('{"eval": {"dev": {"accuracy": 0.8')  # a write cut short
    with pytest.raises(DataError, match=rf"{p} is not valid JSON .*line 1 column \d+.*truncated"):
        read_json(p)
    p.write_text("")
    with pytest.raises(DataError, match=f"{p} is empty"):
        read_json(p)
    assert read_json(tmp_path / "none.json", None) is None
    with pytest.raises(DataError, match="none.json does not exist"):
        read_json(tmp_path / "none.json")
    rows = tmp_path / "predictions-dev.jsonl"
    rows.write_text('{"idx": 0}\n\n{"idx": 1\n')
    with pytest.raises(DataError, match=f"{rows}, line 3: not valid JSON"):
        read_jsonl(rows)


def _write(d, name, data):
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(json.dumps(data) if name.endswith("json") else data)


def test_read_run_tells_the_kinds_apart(tmp_path):
    grid = tmp_path / "sst2"
    _write(grid, METRICS_FILE, {"selection": {"best_learning_rate": 1e-4}, "runs": [{"seed": 1}], "eval": {}})
    _write(grid, CONFIG_FILE, "# nlp-ssl finetune (resolved config)\ntask:\n  type: classification\n")
    _write(grid, RUN_INFO_FILE, {"command": "finetune", "artifact": {"auto_class": "AutoModelForSequenceClassification",
                                                                       "pipeline_tag": "text-classification"}})
    _write(grid / cell_name(1e-4, 1), METRICS_FILE, {"eval": {"dev": {"accuracy": 0.8}}})
    run = read_run(grid)
    assert (run.kind, run.task, [c.name for c in run.cells]) == ("grid", {"type": "classification"}, ["lr0.0001-seed1"])
    assert run.artifact.pipeline_tag == "text-classification" and run.cell(1e-4, 1) == run.cells[0]
    assert read_run(run.cells[0]).kind == "finetune" and read_run(run.cells[0]).artifact is None

    _write(tmp_path / "enc", METRICS_FILE, {"tokens_seen": 100, "steps": 1})
    _write(tmp_path / "tok", TOKENIZER_SUMMARY_FILE, {"vocab_size": 8000})
    assert read_run(tmp_path / "enc").kind == "pretrain"
    tok = read_run(tmp_path / "tok")
    assert (tok.kind, tok.summary, tok.metrics) == ("tokenizer", {"vocab_size": 8000}, {})

    assert not is_run(tmp_path)
    with pytest.raises(DataError, match="holds no finished nlp-ssl run"):
        read_run(tmp_path)
    _write(tmp_path / "bad", METRICS_FILE, {})
    _write(tmp_path / "bad", CONFIG_FILE, "task: [unclosed\n")
    with pytest.raises(DataError, match=f"{tmp_path / 'bad' / CONFIG_FILE} is not a readable YAML config"):
        read_run(tmp_path / "bad")
