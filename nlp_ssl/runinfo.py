"""What every run leaves next to its outputs, and how outputs are written without ever being half-written.

- `write_run_info`: the resolved config (`config.yaml`), library versions, the git revision and the machine
  (`run_info.json`).
- `RunClock` / `provenance`: what a figure's output (metrics.json) records so it can be traced and judged: the
  commit and whether the tree was dirty, library versions, the machine (cores, CPU, GPU) and its load average at
  the start and the end of the run (a shared machine's load changes what a time budget buys).
- `atomic_dir` (from `nlp_ssl.atomic`): outputs are built under a temporary name and moved into place complete.
- `redact_argv`: the command line with the values of token/password-like keys replaced, so no secret lands
  in an output file.
- `content_key`: a stable hash of plain data, used to key caches of derived data.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from nlp_ssl.atomic import atomic_dir, atomic_write_text  # noqa: F401  (atomic_dir: re-exported)
from nlp_ssl.config import dump_yaml, to_dict
from nlp_ssl.layout import CONFIG_FILE, RUN_INFO_FILE

LIBRARIES = ("nlp-ssl", "torch", "transformers", "tokenizers", "datasets", "accelerate", "huggingface_hub",
             "safetensors", "numpy", "pyarrow")


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info() -> dict[str, Any]:
    """The machine a run ran on: CPU model, cores (all and usable by this process), torch threads, GPUs.

    Example:
        >>> sorted(machine_info())
        ['cores', 'cores_usable', 'cpu', 'gpus', 'platform', 'torch_threads']
    """
    cpu = platform.processor() or platform.machine()
    try:  # Linux: the model name is in /proc/cpuinfo (platform.processor() is often empty there)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    threads, gpus = None, []
    if "torch" in sys.modules:  # never import torch just to describe the machine
        torch = sys.modules["torch"]
        threads = torch.get_num_threads()
        if torch.cuda.is_available():
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "cores_usable": usable,
            "torch_threads": threads, "gpus": gpus}


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


class RunClock:
    """Started when a run starts; `provenance()` at its end gives what its metrics.json records.

    Example:
        >>> clock = RunClock()          # at the start of the run
        >>> record = clock.provenance() # at the end: {"git", "versions", "machine", "started", "ended", ...}
        >>> sorted(record["machine"])[:3]
        ['cores', 'cores_usable', 'cpu']
    """

    def __init__(self):
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.load_start = load_average()
        self.git = git_revision()  # at the start: the code the run loaded, even if the checkout moves meanwhile
        self.t0 = time.monotonic()

    def provenance(self, **extra: Any) -> dict[str, Any]:
        """The commit (and dirty flag) at the start, library versions, the machine and its load at the start and
        the end."""
        return {"git": self.git, "versions": library_versions(),
                "machine": {**machine_info(), "load_average_start": self.load_start, "load_average_end": load_average()},
                "started": self.started, "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "wall_seconds": round(time.monotonic() - self.t0, 1), **extra}


def git_revision(root: str | Path | None = None) -> dict[str, Any]:
    """The git commit of the nlp_ssl source tree (`root`: the directory above the package) and whether it had
    uncommitted changes; None for both when the tree is not a checkout's top level, e.g. an installed copy in a
    virtual environment that lies inside some other repository (whose commit is not the code that ran)."""
    root = Path(root or Path(__file__).resolve().parent.parent).resolve()
    try:
        rev = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        lines = rev.stdout.split()
        if rev.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != root:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        return {"commit": lines[1], "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


# keys whose values are secrets: hub_token=..., --password ..., api_key=..., HF_TOKEN=...
SECRET_KEY = re.compile(r"(token|passw(or)?d|secret|api[_-]?key|credential|auth)", re.IGNORECASE)
# values that are secrets whatever their key: Hugging Face, OpenAI/Anthropic, GitHub, AWS access tokens
SECRET_VALUE = re.compile(r"(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16})")
REDACTED = "<redacted>"


def redact_argv(argv: list[str]) -> list[str]:
    """The command line with secret values replaced by `<redacted>`: `key=value` and `--key=value` where the key
    looks like a token or password, the argument after `--token`/`--password`-like options, and anything shaped
    like a known access token.

    Example:
        >>> redact_argv(["nlp-ssl", "pretrain", "c.yaml", "hub_token=hf_abc", "--password", "pw", "lr=1"])
        ['nlp-ssl', 'pretrain', 'c.yaml', 'hub_token=<redacted>', '--password', '<redacted>', 'lr=1']
    """
    out: list[str] = []
    hide_next = False
    for arg in map(str, argv):
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        key, eq, _ = arg.partition("=")
        if eq and SECRET_KEY.search(key):
            out.append(f"{key}={REDACTED}")
            continue
        if arg.startswith("-") and SECRET_KEY.search(arg):
            hide_next = True
        out.append(SECRET_VALUE.sub(REDACTED, arg))
    return out


def write_run_info(out_dir: str | Path, config: Any, command: str, extra: dict | None = None) -> None:
    """Write `config.yaml` (resolved) and `run_info.json` (command, versions, git revision, time) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / CONFIG_FILE, f"# nlp-ssl {command} (resolved config)\n" + dump_yaml(config))
    info = {
        "command": command,
        "argv": redact_argv(sys.argv),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": library_versions(),
        "git": git_revision(),
        "machine": {**machine_info(), "load_average": load_average()},
        **(extra or {}),
    }
    atomic_write_text(out_dir / RUN_INFO_FILE, json.dumps(info, indent=2, default=str) + "\n")


def _drop_nulls(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_nulls(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_drop_nulls(v) for v in data]
    return data


def content_key(data: Any) -> str:
    """sha256 of the canonical JSON form of plain data (dataclasses allowed).

    Keys whose value is null count as absent, so a new optional config key (null by default) does not change
    the keys of existing caches.
    """
    blob = json.dumps(_drop_nulls(to_dict(data)), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
