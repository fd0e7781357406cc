"""Tokenizer training throughput (MB of text per second) on the Wikipedia shards, per tokenizer model.

Runs `nlp-ssl train-tokenizer` (`nlp_ssl.cli.run`) (streaming the text in batches, as the CLI does) in a fresh
process per model, so peak RSS is the training's own; MB counts the UTF-8 bytes of the text read.

Usage:
    python benchmarks/bench_tokenizer.py --quick              # end-to-end check: the first 2,000 articles, vocab 8,000
    python benchmarks/bench_tokenizer.py [--shards 10] [--unigram-shards 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from common import DATA_DIR, REPO, WIKI, machine, table

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from nlp_ssl.cli import build_config
from nlp_ssl.data.sources import load_source, iter_text_batches
cfg, main = build_config("train-tokenizer", json.loads(sys.argv[1]))
mb = sum(len(t.encode()) for b in iter_text_batches(load_source(cfg.data, {data!r}), "text") for t in b) / 1e6
start = time.perf_counter()
r = main(cfg, {data!r})
seconds = time.perf_counter() - start
print("RESULT", json.dumps({{"seconds": seconds, "mb": mb, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                            "unk": r["unknown_rate"], "tpw": r["tokens_per_word"]}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shards", type=int, default=10)
    ap.add_argument("--unigram-shards", type=int, default=1, help="Unigram (EM) training is far slower per MB")
    ap.add_argument("--vocab-size", type=int, default=30000)
    ap.add_argument("--quick", action="store_true", help="end-to-end check: the first 2,000 articles of shard 00")
    args = ap.parse_args()
    max_examples = None
    if args.quick:
        args.shards, args.unigram_shards, args.vocab_size, max_examples = 1, 1, 8000, 2000
    rows = []
    for model in ("wordpiece", "bpe", "byte_bpe", "unigram"):
        n = args.unigram_shards if model == "unigram" else args.shards
        with tempfile.TemporaryDirectory() as tmp:
            cfg = {"output_dir": f"{tmp}/tok", "data": {"streaming": True, "path": WIKI[:n], "max_examples": max_examples},
                   "tokenizer": {"model": model, "vocab_size": args.vocab_size}}
            r = subprocess.run([sys.executable, "-c", CHILD.format(repo=str(REPO), data=str(DATA_DIR)), json.dumps(cfg)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(r.stderr)
            res = json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT ")][-1][7:])
        rows.append([model, n, round(res["mb"], 1), round(res["seconds"], 1), round(res["mb"] / res["seconds"], 2),
                     round(res["peak_rss_mb"]), f"{res['unk']:.4%}", round(res["tpw"], 3)])
        print(rows[-1], flush=True)
    print(f"\ntokenizer training, vocab {args.vocab_size:,}, streaming from .jsonl.gz, {machine()}")
    print(table(["model", "shards", "MB of text", "seconds", "MB/s", "peak RSS MiB", "unknown rate", "tokens/word"], rows))


if __name__ == "__main__":
    main()
