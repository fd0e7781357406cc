"""Shared helpers for benchmarks: data location, a benchmark tokenizer, timing and peak memory, interleaved
repeats and paired ratios, tables."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("NLP_SSL_DATA_DIR", REPO.parent / "shared" / "data"))
RESULTS = REPO / "benchmarks" / "results"
WIKI = [f"corpus/wikipedia-en-2015/part-{i:02d}.jsonl.gz" for i in range(10)]

sys.path.insert(0, str(REPO))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timer(out: dict, key: str = "seconds"):
    start = time.perf_counter()
    yield
    out[key] = time.perf_counter() - start


def bench_tokenizer(vocab_size: int = 8192, max_examples: int | None = None) -> Path:
    """A WordPiece tokenizer trained once on Wikipedia shard 00 (cached under benchmarks/results); `max_examples`
    (quick runs) trains on the first articles only."""
    from nlp_ssl.cli import run

    out = RESULTS / (f"tokenizer-wordpiece-{vocab_size}" + (f"-first{max_examples}" if max_examples else ""))
    run("train-tokenizer", {"output_dir": str(out), "data": {"path": WIKI[0], "max_examples": max_examples},
                            "tokenizer": {"vocab_size": vocab_size}}, str(DATA_DIR))
    return out


def save_results(name: str, data: dict, clock=None, command: list[str] | None = None) -> Path:
    """Write a benchmark's figures to benchmarks/results/NAME.json with their provenance: the command line, the
    commit (and whether the tree was dirty), library versions, the machine and its load average at the start
    (`clock`, a `nlp_ssl.runinfo.RunClock` made when the benchmark started) and at the end."""
    from nlp_ssl.runinfo import RunClock

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {"command": " ".join(command if command is not None else ["python", *sys.argv]), **data,
              "provenance": (clock or RunClock()).provenance()}
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"results written to {path}")
    return path


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[f"{c:,.2f}" if isinstance(c, float) else (f"{c:,}" if isinstance(c, int) else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |" for r in cells[1:]]
    return "\n".join(lines)


def machine() -> str:
    import platform

    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def interleaved(measures: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each measurement `repeats` times, interleaved (A B C, A B C, ...), so slow drift of the machine (other
    load, thermal state) touches every method alike. Returns {name: [value per repeat]}."""
    out: dict[str, list[float]] = {name: [] for name in measures}
    for r in range(repeats):
        for name, measure in measures.items():
            out[name].append(measure())
            print(f"  repeat {r + 1}/{repeats} {name}: {out[name][-1]:,.2f}", flush=True)
    return out


def ratio(values: list[float], baseline: list[float], higher_is_better: bool = True) -> str:
    """Median of the per-repeat ratios (paired by repeat) with their range: `1.23x (1.10-1.31)`. With
    `higher_is_better` false (times), the ratio is baseline / ours, so above 1 still means ours is faster."""
    import statistics

    rs = [(v / b if higher_is_better else b / v) for v, b in zip(values, baseline)]
    return f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"


def median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)
