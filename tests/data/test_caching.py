"""Cache keys of outputs built from sources."""

from __future__ import annotations

import json
import os

from nlp_ssl.data.caching import is_nonempty_dir, read_cached_key, source_fingerprint
from nlp_ssl.data.sources import DataSourceConfig


def test_fingerprint_changes_with_the_file_and_names_hub_sources(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"text": "a"}\n')
    src = DataSourceConfig(path=str(f))
    first = source_fingerprint(src, None)
    assert first == source_fingerprint(src, None)
    f.write_text('{"text": "ab"}\n')
    os.utime(f, ns=(1, 1))
    assert source_fingerprint(src, None) != first
    assert source_fingerprint(DataSourceConfig(hub_name="x/y", split="train"), None) == {"hub": ["x/y", None, "train"]}


def test_cached_key_and_nonempty_dir(tmp_path):
    assert read_cached_key(tmp_path, "r.json") is None and not is_nonempty_dir(tmp_path)
    (tmp_path / "r.json").write_text(json.dumps({"cache_key": "k"}))
    assert read_cached_key(tmp_path, "r.json") == "k" and is_nonempty_dir(tmp_path)
    (tmp_path / "r.json").write_text("{not json")
    assert read_cached_key(tmp_path, "r.json") is None
