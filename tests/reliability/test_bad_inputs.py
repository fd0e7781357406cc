"""Every entry of the bad-input catalogue (`bad_inputs.py`, the table in docs/errors.md): the command fails with
the expected exit code and a one-paragraph message matching the entry, no traceback, and destroys nothing."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("bad_inputs", Path(__file__).with_name("bad_inputs.py"))
bad_inputs = importlib.util.module_from_spec(_spec)
sys.modules["bad_inputs"] = bad_inputs  # dataclasses look their module up there
_spec.loader.exec_module(bad_inputs)
CASES = bad_inputs.cases()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, data_dir):
    ws = bad_inputs.Workspace(tmp_path_factory.mktemp("bad-inputs"))
    ws.build()
    return ws


def test_catalogue_is_large_and_documented():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    assert len({c.command for c in CASES}) == 6  # every command: train-tokenizer, prepare, pretrain, finetune, evaluate, answer
    doc = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text()
    missing = [c.bad_input for c in CASES if c.bad_input not in doc]
    assert missing == [], "docs/errors.md is out of date: run `python tests/reliability/bad_inputs.py --table`"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_a_clear_error(case, workspace):
    result = bad_inputs.run_case(case, workspace)
    assert result.outcome == "clear", result.stderr[-3000:]
    assert result.rc in bad_inputs.expected_code(case), result.stderr[-3000:]
    assert re.search(case.message, result.stderr, re.S), result.stderr[-3000:]
    # one paragraph: "nlp-ssl COMMAND: KIND: message" (config errors list their problems below it)
    assert re.search(rf"nlp-ssl( {re.escape(case.command)})?: ", result.stderr)
    if case.check:
        case.check(workspace)
