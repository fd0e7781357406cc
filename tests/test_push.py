"""`nlp-ssl push` against a local HTTP server standing in for the Hugging Face Hub (through HF_ENDPOINT).

The stand-in speaks the part of the Hub API that `huggingface_hub` uses for `whoami`, `create_repo`,
`create_branch`, `create_commit` (preupload + commit, files sent inline) and `list_repo_tree`. It listens on
the loopback interface only, answers each request within a socket timeout, and shuts itself down after
`lifetime` seconds even if a test forgets to.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from nlp_ssl.hub.inputs import HubError

REPO = Path(__file__).resolve().parent.parent
HUB_ERROR = HubError.exit_code  # the CLI's exit code for Hub errors
TOKEN = "hf_standin_valid_token_0123456789"


class StandInHub:
    """A bounded local stand-in for the Hub: records every request and the repositories' files."""

    def __init__(self, token: str = TOKEN, fail_commit: int | None = None, lifetime: float = 60.0):
        self.token, self.fail_commit = token, fail_commit
        self.requests: list[tuple[str, str]] = []
        self.created: list[dict] = []
        self.branches: list[str] = []
        self.commits: list[dict] = []
        self.files: dict[str, dict[str, bytes]] = {}  # repo_id -> path -> content
        self.valid_cards, self.invalid_cards = 0, []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a stuck client cannot hold a handler thread

            def log_message(self, *args):  # keep the test output clean
                pass

            def _send(self, status: int, body, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _base(self) -> str:
                return f"http://127.0.0.1:{self.server.server_address[1]}"

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {hub.token}":
                    return True
                self._send(401, {"error": "Invalid credentials in Authorization header"},
                           {"X-Error-Message": "Invalid credentials in Authorization header"})
                return False

            def do_GET(self):
                url = urlparse(self.path)
                hub.requests.append(("GET", url.path))
                if not self._authorized():
                    return
                parts = [unquote(p) for p in url.path.split("/")]
                if url.path == "/api/whoami-v2":
                    return self._send(200, {"type": "user", "name": "me", "orgs": [],
                                            "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
                if parts[1:3] == ["api", "models"] and len(parts) >= 7 and parts[5] == "tree":
                    repo = f"{parts[3]}/{parts[4]}"
                    files = hub.files.get(repo, {})
                    return self._send(200, [{"type": "file", "path": p, "size": len(c),
                                             "oid": hashlib.sha1(b"blob %d\0" % len(c) + c).hexdigest()}
                                            for p, c in sorted(files.items())])
                self._send(404, {"error": f"no route {url.path}"})

            def do_POST(self):
                url = urlparse(self.path)
                hub.requests.append(("POST", url.path))
                body = self._body()
                if not self._authorized():
                    return
                parts = [unquote(p) for p in url.path.split("/")]
                if url.path == "/api/repos/create":
                    payload = json.loads(body)
                    repo = f"{payload.get('organization') or 'me'}/{payload['name']}"
                    hub.created.append(payload)
                    if repo in hub.files:
                        return self._send(409, {"error": "You already created this model repo", "url": f"{self._base()}/{repo}"})
                    hub.files[repo] = {}
                    return self._send(200, {"url": f"{self._base()}/{repo}"})
                if url.path == "/api/validate-yaml":  # the Hub checks a README's metadata before the commit
                    from huggingface_hub import ModelCard

                    try:
                        ModelCard(json.loads(body)["content"])  # the card parser of huggingface_hub itself
                    except ValueError as e:
                        hub.invalid_cards.append(str(e))
                        return self._send(400, {"error": str(e)})
                    hub.valid_cards += 1
                    return self._send(200, {})
                if parts[1:3] != ["api", "models"] or len(parts) < 7:
                    return self._send(404, {"error": f"no route {url.path}"})
                repo, action, rev = f"{parts[3]}/{parts[4]}", parts[5], "/".join(parts[6:])
                if repo not in hub.files:
                    return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                if action == "branch":
                    hub.branches.append(rev)
                    return self._send(200, {})
                if action == "preupload":  # every file goes inline in the commit ("regular"), none through LFS
                    files = json.loads(body)["files"]
                    return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                                       "oid": None} for f in files]})
                if action == "commit":
                    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                    header = next(x["value"] for x in lines if x["key"] == "header")
                    files = {x["value"]["path"]: base64.b64decode(x["value"]["content"])
                             for x in lines if x["key"] == "file"}
                    hub.commits.append({"revision": rev, "summary": header["summary"], "files": files,
                                        "other": [x["key"] for x in lines if x["key"] not in ("header", "file")]})
                    if hub.fail_commit:
                        return self._send(hub.fail_commit, {"error": "Storage quota exceeded"},
                                          {"X-Error-Message": "Storage quota exceeded"})
                    hub.files[repo].update(files)
                    oid = hashlib.sha1(repr(sorted(files)).encode()).hexdigest()
                    return self._send(200, {"commitUrl": f"{self._base()}/{repo}/commit/{oid}", "commitOid": oid,
                                            "pullRequestUrl": None})
                self._send(404, {"error": f"no route {url.path}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._timer = threading.Timer(lifetime, self.server.shutdown)  # stops by itself
        self._timer.daemon = True

    def __enter__(self) -> "StandInHub":
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


def push_cli(args: list[str], endpoint: str, tmp_path: Path, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(REPO), HF_HUB_DISABLE_PROGRESS_BARS="1")
    if token is not None:
        env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "nlp_ssl", "push", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A fine-tuned model directory as nlp-ssl writes it, with the files a push must leave behind."""
    import yaml

    d = tmp_path / "sst2"
    files = {
        "config.json": json.dumps({"model_type": "bert", "architectures": ["BertForSequenceClassification"],
                                   "id2label": {"0": "negative", "1": "positive"}}),
        "config.yaml": yaml.safe_dump({"model": "runs/quickstart/encoder", "init": "pretrained",
                                       "task": {"type": "classification", "preset": "sst2", "metrics": ["accuracy"],
                                                "eval": {"dev": {"hub_name": "nyu-mll/glue", "hub_config": "sst2",
                                                                 "split": "validation"}}}}),
        "run_info.json": json.dumps({"command": "finetune", "labels": ["negative", "positive"],
                                     "artifact": {"auto_class": "AutoModelForSequenceClassification",
                                                  "pipeline_tag": "text-classification",
                                                  "description": "a text classifier"}}),
        "metrics.json": json.dumps({"learning_rate": 1e-3, "seed": 1, "steps": 10, "eval": {"dev": {"accuracy": 0.8}}}),
        "model.safetensors": os.urandom(3000), "tokenizer.json": "{}", "tokenizer_config.json": "{}",
        "log_history.json": "[]", "predictions-dev.jsonl": "{}", "plots/training.png": b"png",
        "tensorboard/events.out.tfevents": b"tb", "checkpoints/checkpoint-5/optimizer.pt": b"adam",
    }
    for rel, content in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(content if isinstance(content, bytes) else content.encode())
    from nlp_ssl.hub.cards import write_model_card

    write_model_card(d, hardware="CPU")
    return d


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_push_creates_the_repo_and_commits_exactly_the_model_files(tmp_path, model_dir):
    with StandInHub() as hub:
        r = push_cli([str(model_dir), "--repo-id", "me/sst2-tiny", "--private", "--commit-message", "first"],
                     hub.url, tmp_path)
    assert r.returncode == 0, r.stderr
    expected = ["README.md", "config.json", "config.yaml", "metrics.json", "model.safetensors", "run_info.json",
                "tokenizer.json", "tokenizer_config.json"]
    assert [c["name"] for c in hub.created] == ["sst2-tiny"] and hub.created[0]["organization"] == "me"
    assert hub.created[0].get("visibility") == "private" or hub.created[0].get("private") is True
    assert len(hub.commits) == 1 and hub.commits[0]["summary"] == "first" and hub.commits[0]["other"] == []
    sent = hub.commits[0]["files"]
    assert sorted(sent) == expected  # no checkpoints, optimizer state, logs, plots or predictions
    local_card = (model_dir / "README.md").read_bytes()
    assert {p: _sha256(c) for p, c in sent.items() if p != "README.md"} == {
        p: _sha256((model_dir / p).read_bytes()) for p in expected if p != "README.md"}
    # the card names where it lives; the local directory is left exactly as it was (its card included)
    assert sent["README.md"] == local_card.replace(b'"REPO_ID"', b'"me/sst2-tiny"') != local_card
    assert b'repo = "REPO_ID"' in local_card
    assert hub.valid_cards == 1 and hub.invalid_cards == []
    assert f"uploaded 8 file(s) to {hub.url}/me/sst2-tiny" in r.stdout
    assert TOKEN not in r.stdout + r.stderr
    for p in model_dir.rglob("*"):
        if p.is_file():
            assert TOKEN.encode() not in p.read_bytes(), p


def test_push_leaves_a_finished_run_directory_finished(tmp_path, model_dir):
    """A finished run's completeness marker records every file's size (pretraining's 'done' check); a push,
    which names the repository in the uploaded card, must not rewrite the local card and break that."""
    from nlp_ssl.atomic import is_complete, write_marker

    write_marker(model_dir)
    assert is_complete(model_dir)
    before = {p: p.read_bytes() for p in model_dir.rglob("*") if p.is_file()}
    with StandInHub() as hub:
        r = push_cli([str(model_dir), "--repo-id", "me/a-much-longer-repository-name"], hub.url, tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'repo = "me/a-much-longer-repository-name"' in hub.commits[0]["files"]["README.md"].decode()
    assert {p: p.read_bytes() for p in model_dir.rglob("*") if p.is_file()} == before
    assert is_complete(model_dir)


def test_push_to_a_branch_and_again_to_an_existing_repo(tmp_path, model_dir):
    with StandInHub() as hub:
        assert push_cli([str(model_dir), "--repo-id", "me/m"], hub.url, tmp_path).returncode == 0
        r = push_cli([str(model_dir), "--repo-id", "me/m", "--revision", "v2"], hub.url, tmp_path)
    assert r.returncode == 0, r.stderr
    assert hub.branches == ["v2"] and [c["revision"] for c in hub.commits] == ["main", "v2"]


def test_a_failed_upload_names_what_was_not_uploaded(tmp_path, model_dir):
    """The first push lands; the second changes the weights and its commit is refused: the error names exactly
    the file that did not reach the repository (the others are there with the same content)."""
    with StandInHub() as hub:
        assert push_cli([str(model_dir), "--repo-id", "me/m"], hub.url, tmp_path).returncode == 0
        (model_dir / "model.safetensors").write_bytes(b"new weights")
        hub.fail_commit = 507
        r = push_cli([str(model_dir), "--repo-id", "me/m"], hub.url, tmp_path)
    assert r.returncode == HUB_ERROR
    assert "failed (HTTP 507: Storage quota exceeded); not uploaded: model.safetensors." in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and TOKEN not in r.stdout + r.stderr
    assert hub.files["me/m"]["model.safetensors"] != b"new weights"


def test_a_missing_or_rejected_token_is_a_clear_error(tmp_path, model_dir):
    with StandInHub() as hub:
        r = push_cli([str(model_dir), "--repo-id", "me/m"], hub.url, tmp_path, token=None)
        assert r.returncode == HUB_ERROR and "no Hugging Face token: log in with `hf auth login`" in r.stderr, r.stderr
        assert hub.requests == []  # nothing was sent without a token
        bad = "hf_wrong_token_987654321"
        r = push_cli([str(model_dir), "--repo-id", "me/m"], hub.url, tmp_path, token=bad)
    assert r.returncode == HUB_ERROR and "token was rejected" in r.stderr and "(HTTP 401)" in r.stderr, r.stderr
    assert bad not in r.stdout + r.stderr
    assert hub.created == [] and hub.commits == []


def test_dry_run_needs_no_token_and_no_network(tmp_path, model_dir):
    r = push_cli([str(model_dir), "--repo-id", "me/sst2-tiny", "--dry-run"], f"http://127.0.0.1:{_closed_port()}",
                 tmp_path, token=None)
    assert r.returncode == 0, r.stderr
    assert "dry run: would upload 8 file(s)" in r.stdout and "  model.safetensors" in r.stdout
    assert "checkpoints" not in r.stdout and "log_history.json" not in r.stdout
    assert "model-index:" in r.stdout and "type: accuracy" in r.stdout


def test_push_of_a_multi_seed_directory_names_its_runs(tmp_path):
    d = tmp_path / "grid"
    (d / "lr0.001-seed1").mkdir(parents=True)
    (d / "lr0.001-seed1" / "config.json").write_text("{}")
    (d / "metrics.json").write_text(json.dumps({"runs": [], "seeds": [1], "selection": {"best_learning_rate": 0.001}}))
    r = push_cli([str(d), "--repo-id", "me/m", "--dry-run"], "http://127.0.0.1:9", tmp_path)
    assert r.returncode == HUB_ERROR and f"push one of its runs (lr0.001-seed1), e.g. nlp-ssl push {d}/lr0.001-seed1" in r.stderr


def test_the_stand_in_stops_by_itself():
    import urllib.error
    import urllib.request

    hub = StandInHub(lifetime=0.3)
    hub.__enter__()
    hub._thread.join(timeout=5)  # serve_forever returns once the timer has shut the server down
    assert not hub._thread.is_alive()
    hub.server.server_close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{hub.url}/api/whoami-v2", timeout=2)


def test_push_and_report_help_and_dry_run_stay_light(tmp_path, model_dir):
    code = ("import sys\nfrom nlp_ssl.cli import main\n"
            "for args in (['push', '--help'], ['report', '--help']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            f"rc = main(['push', {str(model_dir)!r}, '--repo-id', 'me/m', '--dry-run'])\n"
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'evaluate', 'matplotlib') if m in sys.modules]\n"
            "print('RC', rc, 'HEAVY', heavy)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "RC 0 HEAVY []" in r.stdout, r.stdout + r.stderr
    assert "usage: nlp-ssl push [-h] --repo-id REPO_ID" in r.stdout and "usage: nlp-ssl report" in r.stdout


def test_hub_push_in_a_config_pushes_when_the_run_finishes(tmp_path, model_dir):
    """What pretrain/finetune call at the end of a run on the main process: `hub.share(dir, cfg.hub)`; with
    huggingface_hub's debug logging on, the token still appears nowhere."""
    code = ("import sys\nfrom nlp_ssl.hub.push import HubConfig, share\n"
            "share(sys.argv[1], HubConfig(push=True, repo_id='me/run-model', private=True))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    with StandInHub() as hub:
        env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"), HF_TOKEN=TOKEN, PYTHONPATH=str(REPO),
                   HF_HUB_VERBOSITY="debug", HF_HUB_DISABLE_PROGRESS_BARS="1")
        r = subprocess.run([sys.executable, "-c", code, str(model_dir)], capture_output=True, text=True, env=env,
                           timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"pushed 8 file(s) from {model_dir} to {hub.url}/me/run-model" in r.stdout
    assert [c["name"] for c in hub.created] == ["run-model"] and len(hub.commits) == 1
    assert 'repo = "me/run-model"' in hub.commits[0]["files"]["README.md"].decode()
    assert TOKEN not in r.stdout + r.stderr


def test_an_unreachable_hub_is_a_clear_error_not_a_crash(tmp_path, model_dir):
    """huggingface_hub's HTTP client raises its own transport errors (not OSError) when nothing listens."""
    r = push_cli([str(model_dir), "--repo-id", "me/m"], f"http://127.0.0.1:{_closed_port()}", tmp_path)
    assert r.returncode == HUB_ERROR, r.stderr
    assert "cannot be reached" in r.stderr and "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert TOKEN not in r.stdout + r.stderr


def test_dry_run_into_a_closed_pipe_is_not_an_internal_error(tmp_path, model_dir):
    """`nlp-ssl push DIR --dry-run | head -1`: the reader leaves early (the listing is larger than a pipe buffer,
    so the writer must meet the closed pipe); no traceback, no 'internal error', the shell's code for SIGPIPE."""
    for i in range(3000):
        (model_dir / f"model-{i:05d}-of-03000.safetensors").write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(PYTHONPATH=str(REPO), HF_HOME=str(tmp_path / "hf-home"))
    proc = subprocess.Popen([sys.executable, "-m", "nlp_ssl", "push", str(model_dir), "--repo-id", "me/m", "--dry-run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    assert proc.stdout.readline().startswith(b"dry run: would upload 3008 file(s)")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "internal error" not in err and "Traceback" not in err and "BrokenPipeError" not in err, err


def test_debug_flag_before_or_after_push(tmp_path, model_dir):
    """`nlp-ssl --debug push ...` (the global flag first, as for every other command) and `push ... --debug`."""
    code = ("import sys\nfrom nlp_ssl.cli import main\n"
            f"a = main(['--debug', 'push', {str(model_dir)!r}, '--repo-id', 'me/m', '--dry-run'])\n"
            f"b = main(['push', {str(model_dir)!r}, '--repo-id', 'me/m', '--dry-run', '--debug'])\n"
            "print('RC', a, b)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "RC 0 0" in r.stdout, r.stdout[-2000:] + r.stderr


def test_a_broken_pipe_not_on_stdout_stays_an_error(capsys):
    """Only our own closed stdout is quiet: a BrokenPipeError from elsewhere (a worker's pipe, a socket) while
    stdout is fine is still reported as a bug."""
    from nlp_ssl.cli import EXIT_BROKEN_PIPE, run_guarded
    from nlp_ssl.errors import EXIT_INTERNAL

    def worker_pipe_broke():
        raise BrokenPipeError(32, "Broken pipe")

    assert run_guarded("pretrain", worker_pipe_broke) == EXIT_INTERNAL != EXIT_BROKEN_PIPE
    assert "internal error (BrokenPipeError)" in capsys.readouterr().err
