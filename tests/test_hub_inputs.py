"""Hub ids as `model`, `tokenizer` and `model.init_from`: offline or unreachable, a clear error at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args: list[str], tmp_path: Path, **env_extra) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"), PYTHONPATH=str(REPO), **env_extra)  # an empty Hub cache
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "nlp_ssl", *args], capture_output=True, text=True, env=env,
                       timeout=120, cwd=REPO)
    return r, time.perf_counter() - t0


@pytest.mark.parametrize("where", ["offline", "closed_port"])
def test_finetuning_a_hub_model_without_the_hub_fails_at_once_with_the_fix(tmp_path, where, data_dir):
    env = {"HF_HUB_OFFLINE": "1"} if where == "offline" else {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    r, seconds = _run(["finetune", "configs/quickstart/finetune.yaml", "model=google/electra-small-discriminator",
                       f"output_dir={tmp_path / 'out'}", f"--data-dir={data_dir}"], tmp_path, **env)
    assert r.returncode == 8, r.stderr  # a Hub error (nlp_ssl.errors exit codes)
    err = r.stderr
    assert "model: google/electra-small-discriminator is a Hub id" in err and "Traceback" not in err
    assert ("offline mode is on (HF_HUB_OFFLINE=1)" if where == "offline" else "cannot be reached") in err
    assert "hf download google/electra-small-discriminator --local-dir models/electra-small-discriminator" in err
    assert seconds < 10  # one attempt, no retry loop (about 1 s here, imports included)
    assert not (tmp_path / "out").exists()


def test_pretraining_init_from_and_tokenizer_hub_ids_fail_clearly_offline(tmp_path):
    from nlp_ssl.errors import NlpSslError
    from nlp_ssl.hub import HubError, local_path

    code = ("from nlp_ssl.hub import local_path\n"
            "for key in ('model.init_from', 'tokenizer'):\n"
            "    try:\n        local_path('bert-base-uncased', key)\n"
            "    except Exception as e:\n        print(type(e).__name__, e)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("HubError model.init_from: bert-base-uncased is a Hub id, offline mode is on")
    assert lines[1].startswith("HubError tokenizer: bert-base-uncased is a Hub id") and "set tokenizer: to that directory" in lines[1]
    # a path that does not exist is a path error, not a Hub lookup
    with pytest.raises(HubError, match="runs/nothing/here does not exist; give a local directory"):
        local_path("runs/nothing/here", "model")
    assert issubclass(HubError, NlpSslError)
    assert local_path(str(tmp_path)) == str(tmp_path)  # local directories pass through untouched
