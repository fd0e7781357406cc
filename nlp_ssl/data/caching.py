"""Cache keys of outputs built from sources: a source's content fingerprint, the key recorded next to an output,
and whether a directory already holds something."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nlp_ssl.data.sources import DataSourceConfig, resolve_paths


def source_fingerprint(src: DataSourceConfig, data_dir: str | None) -> dict[str, Any]:
    """What identifies a source's content for caching: each local file's path, size and mtime, or the Hub id."""
    files = resolve_paths(src, data_dir)
    if files:
        return {"files": [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files]}
    return {"hub": [src.hub_name, src.hub_config, src.split]}


def read_cached_key(out_dir: str | Path, marker: str) -> str | None:
    """The cache key recorded in `out_dir/marker` (a JSON file with a `cache_key`), or None."""
    path = Path(out_dir) / marker
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("cache_key")
    except (OSError, ValueError):
        return None


def is_nonempty_dir(path: str | Path) -> bool:
    return os.path.isdir(path) and any(os.scandir(path))
