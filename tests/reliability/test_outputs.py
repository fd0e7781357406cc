"""Outputs: problems found before the work, nothing destroyed that a command did not create, evaluate overrides
merged key by key."""

from __future__ import annotations

import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from nlp_ssl.atomic import atomic_write_text, check_output_file, check_output_target
from nlp_ssl.config import deep_merge
from nlp_ssl.errors import OutputError


def test_output_dir_checks_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_target(tmp_path / "file", "prepare")
    with pytest.raises(OutputError, match="cannot be created because .*file is a file"):
        check_output_target(tmp_path / "file" / "sub", "prepare")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match="files that nlp-ssl did not write.*overwrite=true"):
        check_output_target(mine, "prepare")
    check_output_target(mine, "prepare", overwrite=True)  # the user said so
    (mine / "run_info.json").write_text('{"command": "pretrain"}')
    with pytest.raises(OutputError, match="the output of `nlp-ssl pretrain`"):
        check_output_target(mine, "prepare")
    check_output_target(mine, "pretrain")  # its own output: the command decides (resume, done, refuse)
    check_output_target(tmp_path / "new" / "deeper", "prepare")  # not there yet: fine

    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10 << 30, 10 << 30, 1 << 20))
    with pytest.raises(OutputError, match=r"disk .* is full \(1 MiB free\)"):
        check_output_target(tmp_path / "new", "prepare")
    with pytest.raises(OutputError, match="is full"):
        check_output_file(tmp_path / "p.json", "--output")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_dir_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="no permission to write"):
            check_output_target(ro / "out", "prepare")
    finally:
        ro.chmod(0o700)


def test_disk_full_during_a_run_is_an_output_error_not_a_traceback(capsys):
    import errno

    from nlp_ssl.cli import run_guarded

    def fill():
        raise OSError(errno.ENOSPC, "No space left on device", "/runs/x/model.safetensors")

    assert run_guarded("pretrain", fill) == 5
    err = capsys.readouterr().err
    assert "output error: the disk is full (writing /runs/x/model.safetensors)" in err and "Traceback" not in err

    def bug():
        raise KeyError("oops")

    assert run_guarded("pretrain", bug) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error (KeyError)" in err


def test_answer_output_keeps_a_users_tmp_file(tmp_path):
    (tmp_path / "preds.tmp").write_text("the user's own file")
    atomic_write_text(tmp_path / "preds.json", "{}\n")
    assert (tmp_path / "preds.tmp").read_text() == "the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.json", "preds.tmp"]
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path, "--output")


def test_evaluate_overrides_merge_key_by_key():
    saved = {"eval": {"dev": {"path": "glue/sst2/dev.tsv", "hub_name": "nyu-mll/glue"}}, "preset": "sst2"}
    assert deep_merge(saved, {"eval": {"dev": {"max_examples": 20}}}) == {
        "eval": {"dev": {"path": "glue/sst2/dev.tsv", "hub_name": "nyu-mll/glue", "max_examples": 20}}, "preset": "sst2"}
    assert saved["eval"]["dev"] == {"path": "glue/sst2/dev.tsv", "hub_name": "nyu-mll/glue"}  # not modified


def test_evaluate_task_override_keeps_the_saved_path_and_another_preset_drops_the_saved_task(tmp_path):
    import yaml

    from nlp_ssl.recipes.evaluate import model_task

    task = {"type": "classification", "preset": "sst2", "eval": {"dev": {"path": "glue/sst2/dev.tsv"}},
            "text_columns": ["sentence"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"task": task}))
    merged = model_task(str(tmp_path), {"eval": {"dev": {"max_examples": 20}}})
    assert merged["eval"]["dev"] == {"path": "glue/sst2/dev.tsv", "max_examples": 20}
    other = model_task(str(tmp_path), {"preset": "rte"})
    assert other == {"type": "classification", "preset": "rte"}  # rte's own files, columns and labels


def test_prepare_refuses_to_write_over_its_tokenizer(tmp_path, tiny_tokenizer_dir, wiki_slice):
    from nlp_ssl.config import from_dict
    from nlp_ssl.recipes.prepare import PrepareConfig, main

    tok = tmp_path / "tok"
    shutil.copytree(tiny_tokenizer_dir, tok)
    before = sorted(p.name for p in tok.iterdir())
    cfg = from_dict(PrepareConfig, {"output_dir": str(tok), "tokenizer": str(tok), "data": {"path": str(wiki_slice)},
                                    "overwrite": True})
    with pytest.raises(OutputError, match="holds this run's input"):
        main(cfg)
    assert sorted(p.name for p in tok.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]


def test_train_tokenizer_pointed_at_a_file_leaves_it_in_place(tmp_path, wiki_slice):
    from nlp_ssl.config import from_dict
    from nlp_ssl.recipes.train_tokenizer import TrainTokenizerConfig, main

    f = tmp_path / "vocab.txt"
    f.write_text("my vocabulary")
    with pytest.raises(OutputError, match="is a file"):
        main(from_dict(TrainTokenizerConfig, {"output_dir": str(f), "data": {"path": str(wiki_slice)}}))
    assert f.read_text() == "my vocabulary" and sorted(p.name for p in tmp_path.iterdir()) == ["vocab.txt"]
    assert Path(f).is_file()


def test_evaluate_refuses_an_output_dir_holding_another_commands_run(tmp_path):
    """evaluate writes metrics.json: into a pretraining or fine-tuning run's folder it would replace that run's
    metrics.json (and unfinish a pretraining run: its marker lists the file's size). Refused before any work."""
    from nlp_ssl.config import from_dict
    from nlp_ssl.recipes.evaluate import EvaluateConfig, main

    model = tmp_path / "clf"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "tokenizer.json").write_text("{}")
    for command in ("pretrain", "finetune"):
        run = tmp_path / command
        run.mkdir()
        (run / "run_info.json").write_text(f'{{"command": "{command}"}}')
        (run / "metrics.json").write_text('{"eval_loss": 1.0}')
        with pytest.raises(OutputError, match=f"output of `nlp-ssl {command}`"):
            main(from_dict(EvaluateConfig, {"model": str(model), "output_dir": str(run)}))
        assert (run / "metrics.json").read_text() == '{"eval_loss": 1.0}'
