"""What a run records about where it came from: commit, versions, machine, load at start and end."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from nlp_ssl import runinfo
from nlp_ssl.runinfo import RunClock, git_revision, load_average, machine_info, write_run_info

ROOT = Path(runinfo.__file__).resolve().parent.parent


def test_machine_info_names_cores_and_cpu():
    m = machine_info()
    assert m["cores"] == os.cpu_count() and 1 <= m["cores_usable"] <= m["cores"]
    assert isinstance(m["cpu"], str) and m["cpu"]
    assert isinstance(m["gpus"], list)


def test_load_average_is_the_os_figure():
    load = load_average()
    assert len(load) == 3 and all(x >= 0 for x in load)


def test_provenance_records_commit_versions_machine_and_load_at_both_ends(monkeypatch):
    loads = iter([[1.0, 2.0, 3.0], [4.5, 5.0, 6.0]])
    monkeypatch.setattr(runinfo, "load_average", lambda: next(loads))
    clock = RunClock()
    record = clock.provenance(run_length={"unit": "max_steps", "value": 10})
    assert record["machine"]["load_average_start"] == [1.0, 2.0, 3.0]
    assert record["machine"]["load_average_end"] == [4.5, 5.0, 6.0]
    assert record["machine"]["cores"] == os.cpu_count()
    assert record["versions"]["torch"] and record["versions"]["transformers"]
    assert record["run_length"] == {"unit": "max_steps", "value": 10}
    assert record["wall_seconds"] >= 0
    json.dumps(record)  # goes into metrics.json as is


def test_git_revision_is_the_checkout_and_its_dirty_flag():
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if rev.returncode != 0:
        pytest.skip("not a git checkout")
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip() != ""
    assert git_revision() == {"commit": rev.stdout.strip(), "dirty": dirty}


def test_git_revision_outside_a_checkout_or_inside_another_repository_is_none(tmp_path):
    """An installed copy (no checkout, or a virtual environment inside another repository) records no commit
    rather than crashing or naming the enclosing repository's commit."""
    none = {"commit": None, "dirty": None}
    assert git_revision(tmp_path) == none
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f").write_text("a")
    subprocess.run(git + ["add", "f"], cwd=tmp_path, check=True)
    subprocess.run(git + ["commit", "-qm", "m"], cwd=tmp_path, check=True)
    site = tmp_path / ".venv" / "site-packages"
    site.mkdir(parents=True)
    assert git_revision(site) == none
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert git_revision(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "f").write_text("b")
    assert git_revision(tmp_path)["dirty"] is True


def test_run_info_records_the_machine(tmp_path):
    write_run_info(tmp_path, {"a": 1}, "test")
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["machine"]["cores"] == os.cpu_count() and len(info["machine"]["load_average"]) == 3
    assert info["git"]["commit"] is None or len(info["git"]["commit"]) == 40
