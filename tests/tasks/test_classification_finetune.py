"""Classification fine-tuning components: run identity, the oracle label, the grid summary."""

from __future__ import annotations

import pytest

from nlp_ssl.config import from_dict
from nlp_ssl.selection import GridResult
from nlp_ssl.tasks.classification import resolve_task
from nlp_ssl.tasks.classification_finetune import FinetuneConfig, is_oracle, roles
from nlp_ssl.tasks.run_loop import grid_summary, run_key


def cfg(**kw) -> FinetuneConfig:
    return from_dict(FinetuneConfig, {"output_dir": "out", "model": "enc", "task": {"preset": "sst2"}, **kw})


def test_run_key_ignores_where_the_run_is_written_but_not_what_it_trains():
    a, b = cfg(), cfg(output_dir="elsewhere", overwrite=True)
    assert run_key(a, 1e-4, 1) == run_key(b, 1e-4, 1)
    assert run_key(a, 1e-4, 1) != run_key(a, 3e-4, 1) != run_key(a, 1e-4, 2)
    assert run_key(a, 1e-4, 1) != run_key(cfg(max_train_samples=100), 1e-4, 1)


def test_oracle_only_when_something_is_chosen_on_the_reported_split():
    grid = {"train": {"learning_rate": [1e-4, 3e-4]}}
    preset = cfg(**grid)
    assert not is_oracle(preset, resolve_task(preset.task))  # chosen on `selection`, dev reported
    same = cfg(task={"preset": "sst2", "held_out": {"other": 0.1}}, **grid)  # selection = report = dev
    assert is_oracle(same, resolve_task(same.task))
    one_rate = cfg(task={"preset": "sst2", "held_out": {"other": 0.1}})
    assert not is_oracle(one_rate, resolve_task(one_rate.task))  # nothing chosen at all
    curve = cfg(task={"preset": "sst2", "held_out": {"other": 0.1}}, train={"eval_steps": 10})
    assert is_oracle(curve, resolve_task(curve.task))  # best weights chosen on dev


def test_grid_summary_reports_the_report_split_and_labels_oracle_figures(capsys):
    def run(sel, dev, seed, lr):
        return {"seed": seed, "learning_rate": lr, "eval": {"selection": {"accuracy": sel}, "dev": {"accuracy": dev}}}

    runs = [run(0.8, 0.6, 1, 3e-4), run(0.7, 0.7, 2, 3e-4)]
    result = GridResult(3e-4, {1e-4: 0.5, 3e-4: 0.8}, {}, runs)
    c = cfg(seed=[1, 2], train={"learning_rate": [1e-4, 3e-4]})
    summary = grid_summary(c, roles(c, resolve_task(c.task)), result)
    assert summary["report_split"] == "dev" and summary["selection"]["split"] == "selection"
    assert summary["selection"]["oracle"] is False
    assert summary["summary"]["dev"]["accuracy"]["mean"] == pytest.approx(0.65)
    assert "dev: accuracy 0.6500" in capsys.readouterr().out
    same = cfg(seed=[1, 2], train={"learning_rate": [1e-4, 3e-4]},
               task={"preset": "sst2", "held_out": {"other": 0.1}})
    runs = [{**r, "eval": {"dev": r["eval"]["dev"]}} for r in runs]
    oracle = grid_summary(same, roles(same, resolve_task(same.task)), GridResult(3e-4, {1e-4: 0.5, 3e-4: 0.6}, {}, runs))
    assert oracle["selection"]["oracle"] is True
    assert "oracle: the learning rate was chosen on this split" in capsys.readouterr().out


def test_a_run_made_before_held_out_units_is_not_taken_for_todays(tmp_path):
    """A finished SST-2 run whose config.yaml predates task.held_out_unit drew its selection split phrase by phrase
    (it shared sentences with training): it is another run, not today's finished one."""
    import yaml

    from nlp_ssl.config import to_dict
    from nlp_ssl.errors import OutputError
    from nlp_ssl.outputs import check_output_dir

    out = tmp_path / "run"
    out.mkdir()
    (tmp_path / "enc").mkdir()
    today = cfg(output_dir=str(out), model=str(tmp_path / "enc"))
    saved = to_dict(today)
    (out / "metrics.json").write_text("{}")
    (out / "run_info.json").write_text('{"command": "finetune"}')
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    assert check_output_dir(today) == "done"  # written today: the same run
    del saved["task"]["held_out_unit"]
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(OutputError, match="already holds another run"):
        check_output_dir(today)
