"""The one harness every benchmark runs on: where data and caches live, interleaved repeats and paired ratios,
timers and peak memory, measurements in a fresh process, a results JSON with its provenance, and tables.

A results file (`benchmarks/results/NAME.json`, written by `save_results`) is the source of every figure the
documents show: `{"title", "command", "provenance", "tables": {TABLE: {"headers": [...], "rows": [[...]]}}, ...}`.
`markdown(record, TABLE)` renders one of its tables; `benchmarks/tables.py` writes them into the documents.

Example:
    >>> runs = interleaved({"baseline": lambda: 2.0, "ours": lambda: 1.0}, repeats=3)   # A B, A B, A B
    >>> ratio(runs["ours"], runs["baseline"], higher_is_better=False)
    '2.00x (2.00-2.00)'
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("NLP_SSL_DATA_DIR", REPO.parent / "shared" / "data"))
RESULTS = REPO / "benchmarks" / "results"  # the figures (kept in git): one JSON per benchmark or study
CACHE = REPO / "runs" / "bench"  # tokenizers, blocks, encoders and --quick results (ignored by git)
WIKI = [f"corpus/wikipedia-en-2015/part-{i:02d}.jsonl.gz" for i in range(10)]
QUICK_ARTICLES = 100  # what a --quick run reads: enough text for a tokenizer and a few thousand blocks

sys.path.insert(0, str(REPO))


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio(values: list[float], baseline: list[float], higher_is_better: bool = True) -> str:
    """Median of the per-repeat ratios (paired by repeat) with their range: `1.23x (1.10-1.31)`. With
    `higher_is_better` false (times), the ratio is baseline / ours, so above 1 still means ours is faster."""
    rs = [(v / b if higher_is_better else b / v) for v, b in zip(values, baseline)]
    return f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"


def interleaved(measures: dict[str, Callable[[], Any]], repeats: int,
                show: Callable[[Any], str] = lambda v: f"{v:,.2f}") -> dict[str, list]:
    """Run each measurement `repeats` times, interleaved (A B C, A B C, ...), so slow drift of a shared machine
    (other load, thermal state) touches every row alike. Returns {name: [value per repeat]}."""
    out: dict[str, list] = {name: [] for name in measures}
    for r in range(repeats):
        for name, measure in measures.items():
            out[name].append(measure())
            print(f"  repeat {r + 1}/{repeats} {name}: {show(out[name][-1])}", flush=True)
    return out


@contextmanager
def timer(out: dict, key: str = "seconds"):
    start = time.perf_counter()
    yield
    out[key] = time.perf_counter() - start


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_process(argv: list[str], env: dict | None = None) -> dict:
    """Run `python ARGV` and return the JSON of its last `RESULT {...}` line: one measurement in its own process,
    so its peak memory and one-off costs are its own."""
    r = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    lines = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    if r.returncode != 0 or not lines:
        raise SystemExit(f"measurement failed: python {' '.join(argv)}\n{r.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def report_result(result: dict) -> None:
    """The child's side of `in_fresh_process`."""
    print("RESULT", json.dumps(result, default=float), flush=True)


def cli(command: str, config: dict) -> dict:
    """Run an `nlp-ssl` command on a config mapping through the CLI's command table (no recipe import)."""
    from nlp_ssl.cli import run

    return run(command, config, str(DATA_DIR))


def bench_tokenizer(vocab_size: int = 8192, quick: bool = False) -> Path:
    """A WordPiece tokenizer trained once on Wikipedia shard 00 (cached; `quick`: on its first articles)."""
    out = CACHE / (f"tokenizer-wordpiece-{vocab_size}" + (f"-first{QUICK_ARTICLES}" if quick else ""))
    cli("train-tokenizer", {"output_dir": str(out), "tokenizer": {"vocab_size": vocab_size},
                            "data": {"path": WIKI[0], "max_examples": QUICK_ARTICLES if quick else None}})
    return out


def wiki_blocks(block_size: int = 128, vocab: int = 8192, shards: int = 1, quick: bool = False,
                layout: str = "stream") -> Path:
    """Wikipedia shards packed into blocks with the benchmark tokenizer (cached; `quick`: the first articles)."""
    out = CACHE / (f"blocks-wiki{shards}-wp{vocab}-{block_size}-{layout}" + (f"-first{QUICK_ARTICLES}" if quick else ""))
    cli("prepare", {"output_dir": str(out), "tokenizer": str(bench_tokenizer(vocab, quick)), "block_size": block_size,
                    "data": {"path": WIKI[:shards], "max_examples": QUICK_ARTICLES if quick else None},
                    "validation_fraction": 0.02, "layout": layout, "progress": False})
    return out


def machine() -> str:
    import platform

    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def cell(value: Any) -> str:
    """A table cell: thousands separators for numbers, two decimals for floats."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table, padded for the terminal (it renders the same as `markdown`'s)."""
    cells = [[str(h) for h in headers]] + [[cell(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(lines + ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |" for r in cells[1:]])


def markdown(record: dict, name: str) -> str:
    """Table `name` of a results record as compact markdown (what the documents show)."""
    if name not in record.get("tables", {}):
        raise KeyError(f"no table {name!r} in this results file; it has {sorted(record.get('tables', {}))}")
    t = record["tables"][name]
    lines = ["| " + " | ".join(t["headers"]) + " |", "|" + "---|" * len(t["headers"])]
    return "\n".join(lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in t["rows"]])


def results_path(name: str, quick: bool = False) -> Path:
    """Where a benchmark's results go: benchmarks/results/NAME.json, or under runs/bench for a --quick check
    (whose numbers are no result and must never replace one)."""
    return (CACHE / "quick" if quick else RESULTS) / f"{name}.json"


def save_results(name: str, title: str, tables: dict[str, tuple[list[str], list[list]]], clock=None,
                 quick: bool = False, path: Path | None = None, **extra: Any) -> Path:
    """Write a benchmark's figures with their provenance: the command line, the commit (and whether the tree was
    dirty), library versions, the machine and its load average at the start (`clock`, a `nlp_ssl.runinfo.RunClock`
    made when the benchmark started) and at the end. Prints the tables and returns the path (`path`: instead of
    `results_path(name, quick)`)."""
    from nlp_ssl.runinfo import RunClock, redact_argv

    record = {"title": title, "command": " ".join(redact_argv(["python", *sys.argv])), "quick": quick,
              "provenance": (clock or RunClock()).provenance(),
              "tables": {k: {"headers": list(h), "rows": [list(r) for r in rows]} for k, (h, rows) in tables.items()},
              **extra}
    path = path or results_path(name, quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\n{title}\n" + "\n\n".join(table(h, rows) for h, rows in tables.values()))
    print(f"results written to {path}")
    return path
