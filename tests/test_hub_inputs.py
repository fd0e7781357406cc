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
    from nlp_ssl.hub.inputs import HubError, local_path

    code = ("from nlp_ssl.hub.inputs import local_path\n"
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


class ModelHub:
    """A loopback stand-in for the Hub that serves one model repository (model info, file tree, file
    downloads), the requests `huggingface_hub.snapshot_download` makes; it stops by itself after `lifetime`."""

    def __init__(self, repo_id: str, files: dict[str, bytes], lifetime: float = 60.0):
        import hashlib
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import unquote, urlparse

        sha = "0123456789abcdef" * 2 + "01234567"
        self.requests: list[tuple[str, str]] = []
        hub = self

        def blob(c: bytes) -> str:
            return hashlib.sha1(b"blob %d\0" % len(c) + c).hexdigest()

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, headers: dict, head: bool):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _route(self, head: bool):
                path = unquote(urlparse(self.path).path)
                hub.requests.append((self.command, path))
                as_json = {"Content-Type": "application/json"}
                if path in (f"/api/models/{repo_id}", f"/api/models/{repo_id}/revision/main"):
                    info = {"id": repo_id, "sha": sha, "siblings": [{"rfilename": f} for f in files]}
                    return self._send(200, json.dumps(info).encode(), as_json, head)
                if path.startswith(f"/api/models/{repo_id}/tree/"):
                    tree = [{"type": "file", "path": f, "size": len(c), "oid": blob(c)} for f, c in files.items()]
                    return self._send(200, json.dumps(tree).encode(), as_json, head)
                prefix = f"/{repo_id}/resolve/"
                if path.startswith(prefix) and path[len(prefix):].split("/", 1)[1] in files:
                    c = files[path[len(prefix):].split("/", 1)[1]]
                    return self._send(200, c, {"X-Repo-Commit": sha, "ETag": f'"{blob(c)}"'}, head)
                return self._send(404, b'{"error": "not found"}', {**as_json, "X-Error-Code": "EntryNotFound"}, head)

            def do_GET(self):
                self._route(False)

            def do_HEAD(self):
                self._route(True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._timer = threading.Timer(lifetime, self.server.shutdown)
        self._timer.daemon = True

    def __enter__(self) -> "ModelHub":
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@pytest.mark.slow  # two fresh interpreters importing torch and transformers (about 20-30 s here); CI runs it
def test_a_hub_id_is_downloaded_once_and_then_works_offline(tmp_path, tiny_encoder_dir):
    """`model: google/tiny-test` through a stand-in Hub: the snapshot holds the model's config, safetensors
    weights and tokenizer (not the other weight formats or training state), the task model gets the same encoder
    weights as the local copy, and a second run with HF_HUB_OFFLINE=1 uses the cached snapshot."""
    files = {p.name: p.read_bytes() for p in Path(tiny_encoder_dir).iterdir() if p.is_file()}
    files.update({"pytorch_model.bin": b"old format", "tf_model.h5": b"tf", "optimizer.pt": b"adam",
                  "onnx/model.onnx": b"onnx"})
    code = ("import sys, os, torch\n"
            "from transformers import AutoModelForSequenceClassification\n"
            "from nlp_ssl.tasks.models import build_task_model, check_model_dir\n"
            "from nlp_ssl.hub.inputs import local_path\n"
            "from nlp_ssl.tokenization import load_tokenizer\n"
            "check_model_dir('google/tiny-test')\n"
            "tok = load_tokenizer('google/tiny-test')\n"
            "m = build_task_model(AutoModelForSequenceClassification, 'google/tiny-test', 'pretrained', 1, 0.1, num_labels=2)\n"
            "ref = build_task_model(AutoModelForSequenceClassification, sys.argv[1], 'pretrained', 1, 0.1, num_labels=2)\n"
            "same = all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), ref.state_dict().values()))\n"
            "print('FILES', sorted(os.listdir(local_path('google/tiny-test'))), 'SAME', same, 'VOCAB', len(tok))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"), PYTHONPATH=str(REPO), HF_HUB_DISABLE_PROGRESS_BARS="1")
    with ModelHub("google/tiny-test", files, lifetime=600) as hub:  # generous: a loaded CI machine is slow
        r = subprocess.run([sys.executable, "-c", code, str(tiny_encoder_dir)], capture_output=True, text=True,
                           env={**env, "HF_ENDPOINT": hub.url}, timeout=500)
    assert r.returncode == 0, r.stderr[-3000:]
    expected = sorted(f for f in files if f.endswith((".json", ".safetensors")))
    assert f"FILES {expected} SAME True VOCAB 2000" in r.stdout
    downloads = sorted(p.split("/")[-1] for m, p in hub.requests if m == "GET" and "/resolve/" in p)
    assert downloads == expected  # each file once; no .bin, .h5, optimizer state or ONNX
    r = subprocess.run([sys.executable, "-c", code, str(tiny_encoder_dir)], capture_output=True, text=True,
                       env={**env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}, timeout=500)
    assert r.returncode == 0 and f"FILES {expected} SAME True" in r.stdout, r.stderr[-3000:]
