"""Output-directory policy: start, done, resume, refuse; atomic JSON writes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from nlp_ssl.atomic import write_marker
from nlp_ssl.errors import NlpSslError, OutputError
from nlp_ssl.outputs import check_output_dir, check_resumable_output_dir, comparable_config, write_json_atomic
from nlp_ssl.runinfo import write_run_info


@dataclass
class _Train:
    lr: float = 1e-3
    resume: bool = False
    overwrite: bool = False


@dataclass
class _Cfg:
    output_dir: str
    size: int = 1
    model: str = "encoder"
    tokenizer: str | None = None
    data: str = "blocks"
    overwrite: bool = False
    train: _Train = field(default_factory=_Train)


def test_comparable_config_ignores_where_and_how_to_treat_the_directory():
    a = {"output_dir": "a", "overwrite": True, "size": 1, "train": {"lr": 1, "resume": True, "overwrite": False}}
    b = {"output_dir": "b", "overwrite": False, "size": 1, "train": {"lr": 1, "resume": False, "overwrite": True}}
    assert comparable_config(a) == comparable_config(b) == {"size": 1, "train": {"lr": 1}}
    assert comparable_config({**a, "size": 2}) != comparable_config(b)


def test_check_output_dir_start_resume_done_and_refuse(tmp_path):
    cfg = _Cfg(str(tmp_path / "run"))
    assert check_output_dir(cfg) == "start"  # missing
    (tmp_path / "run").mkdir()
    assert check_output_dir(cfg) == "start"  # empty
    write_run_info(tmp_path / "run", cfg, "finetune")
    assert check_output_dir(cfg) == "resume"  # same config, no metrics yet
    assert check_output_dir(_Cfg(str(tmp_path / "run"), overwrite=True)) == "start"
    (tmp_path / "run" / "metrics.json").write_text("{}")
    assert check_output_dir(cfg) == "done"
    with pytest.raises(NlpSslError, match="already holds another run; set overwrite=true"):
        check_output_dir(_Cfg(str(tmp_path / "run"), size=2))


def test_check_resumable_output_dir(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(NlpSslError, match="holds no run to resume"):
        check_resumable_output_dir(_Cfg(str(out), train=_Train(resume=True)))
    assert check_resumable_output_dir(_Cfg(str(out))) == ("start", None)
    write_run_info(out, _Cfg(str(out)), "pretrain")
    with pytest.raises(NlpSslError, match="already holds a run; set train.resume=true"):
        check_resumable_output_dir(_Cfg(str(out)))
    with pytest.raises(NlpSslError, match="config differs"):
        check_resumable_output_dir(_Cfg(str(out), size=3, train=_Train(resume=True)))
    # the same run stopped before its first complete checkpoint: nothing to keep, it starts again
    assert check_resumable_output_dir(_Cfg(str(out), train=_Train(resume=True))) == ("start", None)
    (out / "checkpoints" / "checkpoint-7").mkdir(parents=True)
    write_marker(out / "checkpoints" / "checkpoint-7")  # a complete checkpoint
    (out / "checkpoints" / "checkpoint-9").mkdir()  # incomplete (no marker): skipped
    assert check_resumable_output_dir(_Cfg(str(out), train=_Train(resume=True))) == (
        "resume", str(out / "checkpoints" / "checkpoint-7"))
    assert check_resumable_output_dir(_Cfg(str(out), size=3, overwrite=True)) == ("start", None)
    (out / "metrics.json").write_text("{}")
    write_marker(out, files=["metrics.json"])  # finished
    assert check_resumable_output_dir(_Cfg(str(out))) == ("done", None)


def test_the_runs_own_input_is_refused_as_output(tmp_path):
    with pytest.raises(OutputError, match="model"):
        check_output_dir(_Cfg(str(tmp_path / "enc"), model=str(tmp_path / "enc")))
    with pytest.raises(OutputError, match="data"):
        check_resumable_output_dir(_Cfg(str(tmp_path / "run"), data=str(tmp_path / "run" / "blocks")))  # holds it


def test_another_commands_output_is_refused(tmp_path):
    write_run_info(tmp_path / "run", _Cfg(str(tmp_path / "run")), "prepare")
    with pytest.raises(OutputError, match="already holds the output of `nlp-ssl prepare`"):
        check_output_dir(_Cfg(str(tmp_path / "run")))


def test_write_json_atomic_leaves_no_temporary_file(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"a": 1})
    write_json_atomic(tmp_path / "m.json", {"a": 2})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_finetune_run_written_before_the_renames_is_recognised_as_done(tmp_path):
    """The old code wrote each run's rate and seed as lists of one (`learning_rates: [r]`, `seeds: [s]`); the same
    run today is written `learning_rate: r`, `seed: s`: one run either way, so a finished one is not redone or
    refused as another run (README: a run directory written before the renames still resumes)."""
    import yaml

    from nlp_ssl.config import from_dict, to_dict
    from nlp_ssl.recipes.finetune import FinetuneConfig

    out = tmp_path / "run"
    cfg = from_dict(FinetuneConfig, {"output_dir": str(out), "model": "m", "seed": 2,
                                     "train": {"learning_rate": 1e-3, "num_train_epochs": 2.0}})
    write_run_info(out, cfg, "finetune")
    old = to_dict(cfg)
    old["seeds"] = [old.pop("seed")]
    t = old["train"]
    t["learning_rates"], t["num_epochs"] = [t.pop("learning_rate")], t.pop("num_train_epochs")
    (out / "config.yaml").write_text(yaml.safe_dump(old))
    (out / "metrics.json").write_text("{}\n")
    assert check_output_dir(cfg) == "done"
    grid = from_dict(FinetuneConfig, {"output_dir": str(out), "model": "m", "seed": [2, 3],
                                      "train": {"learning_rate": 1e-3, "num_train_epochs": 2.0}})
    with pytest.raises(OutputError, match="another run"):  # two seeds is another run
        check_output_dir(grid)


def test_main_process_output_replaces_the_run_directory_only_when_the_block_succeeds(tmp_path):
    from nlp_ssl.outputs import main_process_output

    final = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with main_process_output(final) as tmp:
            (tmp / "metrics.json").write_text("{}")
            raise RuntimeError("killed half-way")
    assert not final.exists()  # nothing half-written where the run belongs
    with main_process_output(final) as tmp:
        assert tmp != final
        (tmp / "metrics.json").write_text("{}")
    assert (final / "metrics.json").read_text() == "{}"
