"""How `prepare` cost grows with the corpus: time and peak memory on 1, 3 and 10 Wikipedia shards.

Each measurement runs `nlp-ssl prepare` (`nlp_ssl.cli`) in a fresh process (so peak RSS is its own), after a
warm-up process has built `datasets`' Arrow cache of the raw shards (a one-off cost of any `datasets` user).
Both reading modes are measured: the default (memory-mapped Arrow) and `streaming: true` (reads the .gz
files directly). Memory should stay flat as the corpus grows; time should grow linearly.

Two memory figures: peak RSS (`ru_maxrss`), which also counts pages of memory-mapped files that were read
(the Arrow input and the final `save_to_disk` copy of the blocks: page cache the kernel can drop, growing
with the corpus by design of memory mapping), and peak anonymous memory (`RssAnon`, sampled every 20 ms),
which is what the process itself holds (heap, buffers) and is the figure that must stay flat.

Usage: python benchmarks/bench_prepare_scaling.py [--shards 1,3,10]   (--quick: an end-to-end check on 2,000 articles)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from common import DATA_DIR, REPO, WIKI, bench_tokenizer, machine, table

CHILD = r"""
import json, resource, sys, threading, time
sys.path.insert(0, {repo!r})
peak_anon = [0]
def sample():
    while True:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                peak_anon[0] = max(peak_anon[0], int(line.split()[1]))
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
import datasets
datasets.disable_progress_bars()
from nlp_ssl.cli import build_config
cfg, main = build_config("prepare", json.loads(sys.argv[1]))
start = time.perf_counter()
report = main(cfg, {data!r})
seconds = time.perf_counter() - start
print("RESULT", json.dumps({{"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                            "peak_anon_mb": peak_anon[0] / 1024,
                            "tokens": report["total"]["tokens"], "blocks": report["total"]["blocks"]}}))
"""


def run_child(cfg: dict) -> dict:
    code = CHILD.format(repo=str(REPO), data=str(DATA_DIR))
    r = subprocess.run([sys.executable, "-c", code, json.dumps(cfg)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shards", default="1,3,10")
    ap.add_argument("--quick", action="store_true", help="end-to-end check: the first 2,000 articles of shard 00")
    args = ap.parse_args()
    max_examples = None
    if args.quick:
        args.shards, max_examples = "1", 2000
    tok = bench_tokenizer(8192, max_examples)
    rows = []
    for n in [int(x) for x in args.shards.split(",")]:
        for streaming in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = {"output_dir": f"{tmp}/out", "tokenizer": str(tok), "block_size": 128, "progress": False,
                       "data": {"path": WIKI[:n], "streaming": streaming, "max_examples": max_examples}}
                if not streaming:  # warm datasets' Arrow cache of the raw shards
                    run_child({**cfg, "output_dir": f"{tmp}/warm", "data": {**cfg["data"], "max_examples": 1},
                               "validation_fraction": 0.0, "block_size": 2})
                r = run_child(cfg)
            rows.append([n, "streaming" if streaming else "arrow (mmap)", r["tokens"], r["blocks"],
                         round(r["seconds"], 2), int(r["tokens"] / r["seconds"]), int(r["peak_rss_mb"]),
                         int(r["peak_anon_mb"])])
            print(rows[-1], flush=True)
    print(f"\nprepare scaling, block size 128, WordPiece 8k, num_proc default (one per core), {machine()}")
    print(table(["shards", "reading", "tokens", "blocks", "seconds", "tokens/s", "peak RSS MiB", "peak anon MiB"], rows))


if __name__ == "__main__":
    main()
