"""QA fine-tuning components: the selection split carved out of the first eval split, and oracle labels."""

from __future__ import annotations

import pytest

from nlp_ssl.config import from_dict
from nlp_ssl.errors import ConfigError
from nlp_ssl.tasks.qa import QATaskConfig, carve_selection, report_split, resolve_qa_task
from nlp_ssl.tasks.qa_finetune import QAFinetuneConfig, load_eval_rows, oracle_flags


def test_carved_selection_is_seeded_and_disjoint():
    rows = [{"id": str(i)} for i in range(1000)]
    sel, rest = carve_selection(rows, 0.5, seed=0)
    assert {r["id"] for r in sel}.isdisjoint(r["id"] for r in rest) and len(sel) + len(rest) == 1000
    assert 430 < len(sel) < 570
    assert carve_selection(rows, 0.5, seed=0) == (sel, rest)
    assert carve_selection(rows, 0.5, seed=1)[0] != sel
    assert carve_selection(rows[:10], 0.5, seed=0)[0] == [r for r in sel if int(r["id"]) < 10]  # by position


def test_squad_v2_tunes_on_a_carved_half_and_reports_the_rest():
    v2 = resolve_qa_task(QATaskConfig(preset="squad_v2"))
    assert (v2.selection_split, report_split(v2), v2.selection_fraction) == ("selection", "dev", 0.5)
    flags = oracle_flags(from_dict(QAFinetuneConfig, {"output_dir": "o", "model": "m", "task": {"preset": "squad_v2"}}), v2)
    assert flags == {"null_threshold_oracle": False, "best_weights_oracle": False}
    off = resolve_qa_task(QATaskConfig(preset="squad_v2", selection_fraction=0))  # no carving: tuned on dev
    assert (off.selection_split, report_split(off)) == ("dev", "dev")
    cfg = from_dict(QAFinetuneConfig, {"output_dir": "o", "model": "m", "train": {"eval_steps": 5},
                                       "task": {"preset": "squad_v2", "selection_fraction": 0}})
    assert oracle_flags(cfg, off) == {"null_threshold_oracle": True, "best_weights_oracle": True}
    # the run's own `oracle` flag (and a grid's) says so too: a threshold tuned on the reported split is chosen there
    from nlp_ssl.tasks.qa_finetune import qa_roles

    one_rate = from_dict(QAFinetuneConfig, {"output_dir": "o", "model": "m",
                                            "task": {"preset": "squad_v2", "selection_fraction": 0}})
    assert qa_roles(one_rate, off).oracle is True
    assert qa_roles(from_dict(QAFinetuneConfig, {"output_dir": "o", "model": "m", "task": {"preset": "squad_v2"}}),
                    v2).oracle is False
    v1 = resolve_qa_task(QATaskConfig(preset="squad"))
    assert (v1.selection_split, report_split(v1)) == ("dev", "dev")
    with pytest.raises(ConfigError, match="with selection_fraction the selection split is `selection`"):
        resolve_qa_task(QATaskConfig(preset="squad_v2", selection_split="dev"))


def test_eval_rows_carve_the_real_dev_half(data_dir):
    task = resolve_qa_task(QATaskConfig(preset="squad_v2"))
    evals = load_eval_rows(task, data_dir)
    sel, dev = evals["selection"], evals["dev"]
    assert len(sel) + len(dev) == 6078 and 2800 < len(sel) < 3300
    assert {r["id"] for r in sel}.isdisjoint(r["id"] for r in dev)
    assert any(not r["answers"]["text"] for r in sel) and any(not r["answers"]["text"] for r in dev)  # both have NoAns
    assert [len(v) for v in load_eval_rows(task, data_dir, limit=7).values()] == [7, 7]
