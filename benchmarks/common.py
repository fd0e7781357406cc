"""Shared helpers for benchmarks: data location, a benchmark tokenizer, timing and peak memory, tables."""

from __future__ import annotations

import os
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

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


def bench_tokenizer(vocab_size: int = 8192) -> Path:
    """A WordPiece tokenizer trained once on Wikipedia shard 00 (cached under benchmarks/results)."""
    from nlp_ssl.config import from_dict
    from nlp_ssl.recipes.train_tokenizer import TrainTokenizerConfig, main

    out = RESULTS / f"tokenizer-wordpiece-{vocab_size}"
    cfg = from_dict(TrainTokenizerConfig, {"output_dir": str(out), "data": {"path": WIKI[0]},
                                           "tokenizer": {"vocab_size": vocab_size}})
    main(cfg, str(DATA_DIR))
    return out


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
