"""Data sources: a Hugging Face Hub data set by name, or local files, loaded as a `datasets` data set.

A source names a Hub data set (`hub_name`, `hub_config`, `split`), local files (`path`), or both. Configured
local files are always what is loaded: a missing one is an error naming it, never a silent switch to other
data. The Hub counterpart named beside them is used only when none of the local files exists and the source
says `hub_fallback: true`. Relative paths resolve against the data directory (`--data-dir` or `NLP_SSL_DATA_DIR`).

Loading itself is done by `datasets` (its json/csv/text/parquet builders, memory-mapped Arrow, streaming).
What this module adds is what those builders do not do: checks that turn a bad file into an error naming
the file and line (missing, empty, non-UTF-8, no usable text, missing column), a fast failure when the Hub
cannot be reached, and a reader for SQuAD-format JSON (nested articles -> one row per question).

Example:
    >>> src = DataSourceConfig(path="corpus/wikipedia-en-2015/part-00.jsonl.gz")  # doctest: +SKIP
    >>> ds = load_source(src, data_dir="../shared/data")                            # doctest: +SKIP
"""

from __future__ import annotations

import codecs
import difflib
import glob
import gzip
import io
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Union
from urllib.parse import urlparse

from nlp_ssl.errors import DataError

Format = Literal["auto", "text", "jsonl", "csv", "tsv", "parquet", "squad"]
_SUFFIX_FORMATS = {
    ".txt": "text", ".text": "text", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
}


@dataclass
class DataSourceConfig:
    """Where a data set comes from and how to read it.

    Attributes:
        path: local file, glob, or list of them; relative to the data directory. When given, a missing file is an
            error (see hub_fallback).
        hub_name: Hugging Face Hub data set id (e.g. `wikimedia/wikipedia`), loaded when `path` is not given.
        hub_fallback: load `hub_name` instead when none of the `path` files exists (default: a missing local
            file is an error, so a run never trains on other data than the config names without saying so).
        hub_config: the Hub data set's configuration name (e.g. `20231101.en`).
        split: split to read (Hub split name; for local files always the files themselves).
        format: file format; `auto` decides from the suffix (`.gz` is looked through).
        text_column: column holding the text (for `text` files it is always `text`).
        column_names: names for a CSV/TSV without a header row.
        header: whether a CSV/TSV file starts with a header row.
        sample_by: for plain-text files, one example per `line`, `paragraph` (blank-line separated) or `document`.
        encoding_errors: `strict` (a non-UTF-8 byte is an error naming file and line) or `replace` (U+FFFD).
        streaming: iterate without converting to Arrow first (corpora larger than disk or memory).
        max_examples: keep only the first N examples (quick runs, tests).
        rename_columns: old -> new column names, applied to the columns present (lets local files and their
            Hub counterpart, whose columns are named differently, feed the same task).
    """

    path: Union[str, list[str], None] = None
    hub_name: str | None = None
    hub_config: str | None = None
    hub_fallback: bool = False
    split: str = "train"
    format: Format = "auto"
    text_column: str = "text"
    column_names: list[str] | None = None
    header: bool = True
    sample_by: Literal["line", "paragraph", "document"] = "line"
    encoding_errors: Literal["strict", "replace"] = "strict"
    streaming: bool = False
    max_examples: int | None = None
    rename_columns: dict[str, str] | None = None

    def validate(self) -> list[str]:
        problems = []
        if self.path is None and self.hub_name is None:
            problems.append("path: give local files (path) or a Hub data set (hub_name), or both")
        if self.max_examples is not None and self.max_examples <= 0:
            problems.append(f"max_examples: must be positive, got {self.max_examples}")
        if self.hub_fallback and (self.hub_name is None or self.path is None):
            problems.append("hub_fallback: needs both path (tried first) and hub_name (the fallback)")
        if self.column_names is not None and self.header:
            problems.append("column_names: given for a file with a header row; set header: false for headerless CSV/TSV")
        return problems

    @property
    def paths(self) -> list[str]:
        if self.path is None:
            return []
        return [self.path] if isinstance(self.path, str) else list(self.path)


def data_dir_from_env(explicit: str | None = None) -> str | None:
    """The data directory: an explicit `--data-dir`, else `NLP_SSL_DATA_DIR`, else None (paths relative to cwd)."""
    return explicit or os.environ.get("NLP_SSL_DATA_DIR") or None


def _full_path(p: str, data_dir: str | None) -> str:
    """A configured path as loaded: `~` expanded, a relative path under the data directory."""
    p = os.path.expanduser(p)
    return p if os.path.isabs(p) or not data_dir else os.path.join(data_dir, p)


def resolve_paths(src: DataSourceConfig, data_dir: str | None) -> list[Path]:
    """Expand `src.path` (globs allowed) against the data directory. Returns [] when none of it exists."""
    out: list[Path] = []
    for p in src.paths:
        full = _full_path(p, data_dir)
        matches = sorted(glob.glob(full)) if glob.has_magic(full) else ([full] if os.path.exists(full) else [])
        out.extend(Path(m) for m in matches)
    return out


def _missing_paths(src: DataSourceConfig, data_dir: str | None) -> list[str]:
    missing = []
    for p in src.paths:
        full = _full_path(p, data_dir)
        if not (glob.glob(full) if glob.has_magic(full) else os.path.exists(full)):
            missing.append(full)
    return missing


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def detect_format(path: Path) -> str:
    """Format from the suffix (looking through `.gz`); `.json` is SQuAD if it holds `data[].paragraphs`, else JSON lines."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    fmt = _SUFFIX_FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: unknown format (suffix {Path(name).suffix or 'none'!r}); set format: to one of "
            "text, jsonl, csv, tsv, parquet, squad"
        )
    if fmt == "json":
        with _open_binary(path) as f:
            head = f.read(1 << 16).lstrip()
        fmt = "squad" if head.startswith(b"{") and b'"paragraphs"' in head and b'"data"' in head else "jsonl"
    return fmt


def check_text_file(path: Path, encoding_errors: str = "strict") -> None:
    """Fail early, naming file and line, on an empty file or (in strict mode) bytes that are not UTF-8.

    `datasets` would otherwise fail deep inside Arrow with a message that names neither.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    line, total = 1, 0
    try:
        with _open_binary(path) as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
                if encoding_errors == "strict":
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as e:
                        bad_line = line + chunk.count(b"\n", 0, e.start)
                        raise DataError(
                            f"{path}, line {bad_line}: bytes that are not UTF-8 ({chunk[e.start:e.start + 4]!r}). "
                            "Re-encode the file as UTF-8, or set encoding_errors: replace to read them as U+FFFD."
                        ) from None
                    line += chunk.count(b"\n")
            if encoding_errors == "strict":
                decoder.decode(b"", final=True)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot be read ({e}); is it a valid {'gzip ' if path.suffix == '.gz' else ''}file?") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: ends in the middle of a UTF-8 character; re-encode it as UTF-8") from None
    if total == 0:
        raise DataError(f"{path}: file is empty; point path at a file with text in it")


def read_squad(path: Path) -> list[dict[str, Any]]:
    """Flatten a SQuAD v1.1/v2.0 JSON file into one row per question.

    Rows: id, title, context, question, answers {text: [...], answer_start: [...]}, is_impossible.
    """
    try:
        with _open_binary(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line {e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(f"{path}: not SQuAD format (expected a top-level object with a 'data' list of articles)")
    rows = []
    for a, article in enumerate(data["data"]):
        paragraphs = article.get("paragraphs", []) if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{path}: data[{a}].paragraphs must be a list of {{context, qas}} objects, got "
                            f"{type(paragraphs).__name__}; check the nesting (data -> paragraphs -> qas -> answers)")
        for p, para in enumerate(paragraphs):
            if not isinstance(para, dict) or "context" not in para or "qas" not in para:
                raise DataError(f"{path}: data[{a}].paragraphs[{p}] lacks 'context' or 'qas'")
            if not isinstance(para["qas"], list) or not isinstance(para["context"], str):
                raise DataError(f"{path}: data[{a}].paragraphs[{p}]: 'context' must be text and 'qas' a list")
            for q, qa in enumerate(para["qas"]):
                rows.append(_squad_row(path, f"data[{a}].paragraphs[{p}].qas[{q}]", article, para, qa))
    return rows


def _squad_row(path: Path, where: str, article: dict, para: dict, qa: Any) -> dict[str, Any]:
    """One SQuAD question as a row, with an error naming its place in the file for each malformed field."""
    if not isinstance(qa, dict):
        raise DataError(f"{path}: {where} must be an object with id, question and answers")
    for key in ("id", "question"):
        if key not in qa:
            raise DataError(f"{path}: {where} has no '{key}'; every question needs an id and a question")
    answers = qa.get("answers", [])
    if not isinstance(answers, list):
        raise DataError(f"{path}: {where} (id {qa['id']!r}): 'answers' must be a list of {{text, answer_start}}")
    texts, starts = [], []
    for n, x in enumerate(answers):
        if not isinstance(x, dict) or not isinstance(x.get("text"), str):
            raise DataError(f"{path}: {where}.answers[{n}] (id {qa['id']!r}) needs a 'text' string")
        start = x.get("answer_start")
        if isinstance(start, bool) or not isinstance(start, (int, str)) or not str(start).lstrip("-").isdigit():
            raise DataError(f"{path}: {where}.answers[{n}] (id {qa['id']!r}): answer_start must be an integer "
                            f"(a character offset into the context), got {start!r}")
        texts.append(x["text"])
        starts.append(int(start))
    return {
        "id": str(qa["id"]),
        "title": article.get("title", ""),
        "context": para["context"],
        "question": qa["question"],
        "answers": {"text": texts, "answer_start": starts},
        "is_impossible": bool(qa.get("is_impossible", False)),
    }


def locate_parse_error(path: Path, fmt: str, src: "DataSourceConfig") -> str | None:
    """After a reader failed: the first line of a JSON-lines or CSV/TSV file that does not parse, as
    "FILE, line N: problem", or None. (`datasets` reports such errors without the line.)"""
    import csv

    try:
        with _open_binary(path) as raw:
            lines = io.TextIOWrapper(raw, encoding="utf-8", errors=src.encoding_errors, newline="")
            if fmt == "jsonl":
                for n, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    try:
                        value = json.loads(line)
                    except json.JSONDecodeError as e:
                        return f"{path}, line {n}: not valid JSON ({e.msg}, column {e.colno}); each line must be one JSON object"
                    if not isinstance(value, dict):
                        return f"{path}, line {n}: a JSON {type(value).__name__}, not an object; each line must be one JSON object"
            elif fmt in ("csv", "tsv"):
                quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
                reader = csv.reader(lines, delimiter="\t" if fmt == "tsv" else ",", quoting=quoting)
                width = None if src.header else (len(src.column_names) if src.column_names else None)
                for row in reader:
                    if width is None:
                        width = len(row)
                    elif row and len(row) != width:
                        return (f"{path}, line {reader.line_num}: {len(row)} fields where the "
                                f"{'header has' if src.header else 'columns are'} {width}; quote fields that contain "
                                f"{'tabs' if fmt == 'tsv' else 'commas'}, or fix the line")
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        return f"{path}: {e}"
    return None


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint answers a TCP connection within `timeout` seconds (no retries, no hang)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _load_hub(src: DataSourceConfig, data_dir: str | None):
    import datasets

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    local_hint = (
        f"the local path {src.paths} was not found under data dir {data_dir!r}; " if src.paths else ""
    )
    fix = (
        "Point `path:` at local files (relative paths resolve against --data-dir or NLP_SSL_DATA_DIR), "
        "or set HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache."
    )
    if not offline and not hub_reachable():
        raise DataError(
            f"cannot reach the Hugging Face Hub to load data set {src.hub_name!r}; {local_hint}{fix}"
        )
    try:
        return datasets.load_dataset(src.hub_name, src.hub_config, split=src.split, streaming=src.streaming)
    except Exception as e:  # datasets raises many types here (ConnectionError, FileNotFoundError, ValueError...)
        raise DataError(f"could not load Hub data set {src.hub_name!r} (config {src.hub_config!r}, split "
                        f"{src.split!r}): {type(e).__name__}: {e}. {local_hint}{fix}") from None


def _load_local(src: DataSourceConfig, files: list[Path]):
    import datasets

    formats = {src.format if src.format != "auto" else detect_format(f) for f in files}
    if len(formats) > 1:
        raise DataError(f"files of different formats in one source ({sorted(formats)}): {[str(f) for f in files]}; "
                        "use one format per source")
    fmt = formats.pop()
    for f in files:
        if fmt != "parquet":
            check_text_file(f, src.encoding_errors)
        elif f.stat().st_size == 0:
            raise DataError(f"{f}: file is empty; point path at a file with data in it")
    data_files = [str(f) for f in files]
    common = {"split": "train", "streaming": src.streaming}
    if fmt == "squad":
        rows = [row for f in files for row in read_squad(f)]
        if not rows:
            raise DataError(f"{files[0]}: SQuAD file holds no questions")
        ds = datasets.Dataset.from_list(rows)
        return ds.to_iterable_dataset() if src.streaming else ds
    try:
        if fmt == "text":
            return datasets.load_dataset("text", data_files=data_files, sample_by=src.sample_by,
                                         encoding_errors=src.encoding_errors, **common)
        if fmt == "jsonl":
            return datasets.load_dataset("json", data_files=data_files, encoding_errors=src.encoding_errors, **common)
        if fmt in ("csv", "tsv"):
            kwargs: dict[str, Any] = {"sep": "\t" if fmt == "tsv" else ","}
            if fmt == "tsv":
                kwargs["quoting"] = 3  # csv.QUOTE_NONE: GLUE TSVs contain bare quote characters
            if not src.header:
                kwargs["header"] = None
                if src.column_names:
                    kwargs["column_names"] = src.column_names
            return datasets.load_dataset("csv", data_files=data_files, encoding_errors=src.encoding_errors,
                                         **kwargs, **common)
        if fmt == "parquet":
            return datasets.load_dataset("parquet", data_files=data_files, **common)
    except DataError:
        raise
    except Exception as e:
        where = next((m for m in (locate_parse_error(f, fmt, src) for f in files) if m), None)
        if where:
            raise DataError(where) from None
        raise DataError(f"could not read {', '.join(data_files)} as {fmt}: {type(e).__name__}: {e}") from None
    raise DataError(f"unknown format {fmt!r}")


def load_source(src: DataSourceConfig, data_dir: str | None = None, columns: list[str] | None = None):
    """Load a source as a `datasets.Dataset` (or `IterableDataset` when streaming).

    Args:
        src: the source config.
        data_dir: directory that relative local paths resolve against.
        columns: columns the caller needs; a missing one is an error that lists the columns there are.

    Raises:
        DataError: naming the file (and line, for bad bytes) and how to fix it.
    """
    files = resolve_paths(src, data_dir)
    missing = _missing_paths(src, data_dir)
    if not src.paths:
        ds = _load_hub(src, data_dir)
    elif not missing:
        ds = _load_local(src, files)
    elif src.hub_fallback and len(missing) == len(src.paths):
        ds = _load_hub(src, data_dir)
    else:
        hint = "" if data_dir else " (relative paths resolve against the current directory: pass --data-dir or set NLP_SSL_DATA_DIR)"
        some = f" ({len(missing)} of the {len(src.paths)} configured paths)" if len(src.paths) > 1 else ""
        instead = (f"; or, to load Hub data set {src.hub_name!r} instead when none of the local files exists, set "
                   "hub_fallback: true" if src.hub_name else "")
        raise DataError(f"file not found: {', '.join(missing)}{some}{hint}. Fix the path{instead}")
    where = describe_source(src, data_dir)
    # A UTF-8 byte-order mark survives in the first header name of some files (MRPC); it is not part of the name.
    bom = {c: c.lstrip("\ufeff") for c in ds.column_names or [] if c.startswith("\ufeff")}
    if bom:
        ds = ds.rename_columns(bom)
    renames = {old: new for old, new in (src.rename_columns or {}).items() if old in (ds.column_names or [])}
    if renames:
        ds = ds.rename_columns(renames)
    if src.max_examples is not None:
        ds = ds.take(src.max_examples) if src.streaming else ds.select(range(min(src.max_examples, len(ds))))
    check_columns(ds, columns or [], where)
    if not src.streaming and len(ds) == 0:
        raise DataError(f"{where}: no examples; check the file or split")
    return ds


def check_columns(ds, columns: list[str], where: str) -> None:
    """Raise a DataError naming the source and the columns it has when one of `columns` is absent."""
    have = list(ds.column_names or []) if ds.column_names is not None else None
    if have is None:  # some streaming sources only know their columns after the first row
        have = list(next(iter(ds)).keys())
    for col in columns:
        if col not in have:
            close = difflib.get_close_matches(col, have, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise DataError(f"{where}: no column {col!r}; it has {have}.{hint} Set text_column (or the task's column keys) accordingly.")


def describe_source(src: DataSourceConfig, data_dir: str | None = None) -> str:
    """Short human name of a source for messages: its files, or its Hub id."""
    files = resolve_paths(src, data_dir)
    if files:
        return ", ".join(str(f) for f in files[:3]) + (f" (+{len(files) - 3} more)" if len(files) > 3 else "")
    return f"Hub data set {src.hub_name}"


def iter_text_batches(ds, column: str, batch_size: int = 1000, where: str = "data set") -> Iterator[list[str]]:
    """Yield lists of non-empty strings from `column`, in order; None and blank values are skipped.

    Works for in-memory and streaming data sets alike and never holds more than one batch.

    Raises:
        DataError: when the whole column held no usable text.
    """
    usable = 0
    for batch in ds.iter(batch_size=batch_size):
        texts = [t for t in batch[column] if isinstance(t, str) and t.strip()]
        if texts:
            usable += len(texts)
            yield texts
    if usable == 0:
        raise DataError(f"{where}: column {column!r} holds no usable text (every value is empty or null); "
                        "point the source at a file with text, or set text_column to the column that has it")


def column(ds, name: str) -> list:
    """A whole column as a Python list, read in one Arrow pass (indexing `ds[name]` in datasets 5 is a lazy
    per-row view, hundreds of times slower to iterate)."""
    return ds.with_format("arrow")[name].to_pylist()
