"""What every run leaves next to its outputs, and how outputs are written without ever being half-written.

- `write_run_info`: the resolved config (`config.yaml`), library versions and the git revision (`run_info.json`).
- `atomic_dir`: build an output directory under a temporary name beside it and move it into place only when
  complete; a crash or an error leaves the previous output (if any) untouched and no partial directory that a
  later run could take for finished.
- `content_key`: a stable hash of plain data, used to key caches of derived data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from nlp_ssl.config import dump_yaml, to_dict

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


def git_revision() -> dict[str, Any]:
    """The git commit of the nlp_ssl source tree and whether it had uncommitted changes (None outside git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def write_run_info(out_dir: str | Path, config: Any, command: str, extra: dict | None = None) -> None:
    """Write `config.yaml` (resolved) and `run_info.json` (command, versions, git revision, time) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(f"# nlp-ssl {command} (resolved config)\n" + dump_yaml(config), encoding="utf-8")
    info = {
        "command": command,
        "argv": sys.argv,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": library_versions(),
        "git": git_revision(),
        **(extra or {}),
    }
    (out_dir / "run_info.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")


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


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `final`; on success it replaces `final` in one rename.

    On any exception the temporary directory is removed and `final` is left exactly as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
