"""Data preparation: `prepare` against the `run_mlm.py` recipe (default), how `prepare` grows with the corpus
(`--scaling`), and tokenizer training per model (`--tokenizer`), on the Wikipedia shards.

Default (throughput): the baseline is written the way `run_mlm.py` does it (without `--line_by_line`):
`Dataset.map(tokenize_function, batched=True)` with `return_special_tokens_mask=True`, then
`Dataset.map(group_texts, batched=True)` over 1000-example batches, each batch's tail dropped. Ours:
`nlp_ssl.data.prepare.prepare_corpus` (Rust batch tokenization, numpy packing that carries the tail across batches,
Arrow writer). Both start from the same loaded (Arrow-cached) data set and write their result to disk; only the
preparation is timed (counting blocks and dropped tokens is outside the timer). Every method runs `--repeats`
times, interleaved; the ratio is the median (min-max) over repeats of baseline time / method time.

`--scaling`: `nlp-ssl prepare` on 1, 3 and 10 shards, each in a fresh process (after a warm-up process has built
`datasets`' Arrow cache of the raw shards), reading memory-mapped Arrow and `streaming: true`. Two memory
figures: peak RSS (`ru_maxrss`, which also counts read pages of memory-mapped files: page cache the kernel can
drop) and peak anonymous memory (`RssAnon`, sampled every 20 ms: what the process itself holds, which must stay
flat as the corpus grows, while time grows linearly).

`--tokenizer`: `nlp-ssl train-tokenizer` (streaming the text in batches, as the CLI does) in a fresh process per
model (peak RSS its own); MB counts the UTF-8 bytes of the text read; unknown rate and tokens/word on held-out text.

Usage:
    python benchmarks/bench_prepare.py --quick [--scaling | --tokenizer]   # end-to-end check (100 articles)
    python benchmarks/bench_prepare.py --shards 3 --repeats 3
    python benchmarks/bench_prepare.py --scaling --shards 1,3,10
    python benchmarks/bench_prepare.py --tokenizer --shards 10 --unigram-shards 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from itertools import chain
from pathlib import Path

from harness import (CACHE, DATA_DIR, QUICK_ARTICLES, WIKI, bench_tokenizer, in_fresh_process, interleaved, median,
                     peak_rss_mb, ratio, report_result, save_results, timer)


def run_mlm_baseline(ds, tokenizer, block_size: int, num_proc: int | None, cache_dir: Path) -> dict:
    """The run_mlm.py preprocessing path (group_texts over 1000-example batches); its statistics are counted by
    the caller, outside the timer."""
    def tokenize_function(examples):
        return tokenizer(examples["text"], return_special_tokens_mask=True)

    def group_texts(examples):
        concatenated = {k: list(chain(*examples[k])) for k in examples.keys()}
        total_length = (len(concatenated[list(examples.keys())[0]]) // block_size) * block_size
        return {k: [t[i: i + block_size] for i in range(0, total_length, block_size)] for k, t in concatenated.items()}

    tokenized = ds.map(tokenize_function, batched=True, num_proc=num_proc, remove_columns=ds.column_names,
                       load_from_cache_file=False, cache_file_name=str(cache_dir / "tok.arrow"))
    grouped = tokenized.map(group_texts, batched=True, num_proc=num_proc, load_from_cache_file=False,
                            cache_file_name=str(cache_dir / "grouped.arrow"))
    return {"tokenized": tokenized, "grouped": grouped}


def baseline_stats(result: dict, block_size: int) -> dict:
    total = sum(len(x) for x in result["tokenized"]["input_ids"])
    return {"blocks": len(result["grouped"]), "dropped": total - len(result["grouped"]) * block_size}


def throughput(args, clock) -> Path:
    import datasets
    from transformers import AutoTokenizer

    from nlp_ssl.data.prepare import prepare_corpus
    from nlp_ssl.data.sources import DataSourceConfig, iter_text_batches, load_source

    datasets.disable_progress_bars()
    shards = int(args.shards.split(",")[0])
    tokenizer = AutoTokenizer.from_pretrained(str(bench_tokenizer(8192, args.quick)))
    tokenizer.model_max_length = 10**9  # silence the long-sequence warning in the baseline; no truncation either way
    ds = load_source(DataSourceConfig(path=WIKI[:shards], max_examples=args.max_examples), str(DATA_DIR), ["text"])
    ds = ds.select_columns(["text"])
    mb = sum(len(t.encode()) for b in iter_text_batches(ds, "text") for t in b) / 1e6
    bs = args.block_size

    def baseline(num_proc):  # (timed work, statistics pass outside the timer)
        return lambda d: run_mlm_baseline(ds, tokenizer, bs, num_proc, d), lambda r: baseline_stats(r, bs)

    def ours(num_proc):
        return (lambda d: prepare_corpus(iter_text_batches(ds, "text"), tokenizer, d / "out", bs, 0.0, 0, num_proc,
                                         progress=False),
                lambda r: {"blocks": r["train"]["blocks"], "dropped": r["train"]["dropped_tokens"]})

    methods = {"run_mlm.py recipe (map + group_texts, 1 proc)": baseline(None),
               "run_mlm.py recipe (map + group_texts, 2 procs)": baseline(2),
               "nlp-ssl prepare (num_proc=1)": ours(1), "nlp-ssl prepare (num_proc=2)": ours(2)}
    stats: dict[str, dict] = {}

    def measure(name):
        work_fn, stat_fn = methods[name]

        def once() -> float:
            work = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
            t: dict = {}
            with timer(t):
                result = work_fn(work)
            stats[name] = stat_fn(result)  # outside the timer
            del result
            shutil.rmtree(work)
            return t["seconds"]
        return once

    seconds = interleaved({name: measure(name) for name in methods}, args.repeats, show=lambda s: f"{s:.2f} s")
    base = next(iter(seconds.values()))
    rows = [[name, round(median(secs), 2), int(stats[name]["blocks"] * bs / median(secs)), round(mb / median(secs), 2),
             stats[name]["blocks"], stats[name]["dropped"], ratio(secs, base, higher_is_better=False)]
            for name, secs in seconds.items()]
    title = (f"prepare: {shards} Wikipedia shard(s){f' (first {args.max_examples} articles)' if args.max_examples else ''}, "
             f"{mb:.1f} MB of text, block size {bs}, WordPiece 8k, {args.repeats} interleaved repeat(s), median "
             "seconds, speed ratio = median (min-max) over repeats")
    headers = ["method", "seconds", "tokens/s (in blocks)", "MB/s", "blocks", "dropped tokens", "speed vs run_mlm 1 proc"]
    return save_results("bench_prepare", title, {"throughput": (headers, rows)}, clock, args.quick, args=vars(args))


def child(kind: str, cfg: dict) -> None:
    """One `nlp-ssl` command in this fresh process (`--child KIND JSON`), with its time and peak memory."""
    peak_anon = [0]

    def sample():  # RssAnon: what the process holds itself, not page cache of memory-mapped files
        while True:
            for line in open("/proc/self/status"):
                if line.startswith("RssAnon:"):
                    peak_anon[0] = max(peak_anon[0], int(line.split()[1]))
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    import datasets

    from nlp_ssl.cli import build_config

    datasets.disable_progress_bars()
    cfg, main = build_config(kind, cfg)
    mb = None
    if kind == "train-tokenizer":
        from nlp_ssl.data.sources import iter_text_batches, load_source

        mb = sum(len(t.encode()) for b in iter_text_batches(load_source(cfg.data, str(DATA_DIR)), "text") for t in b) / 1e6
    start = time.perf_counter()
    r = main(cfg, str(DATA_DIR))
    seconds = time.perf_counter() - start
    out = {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "peak_anon_mb": peak_anon[0] / 1024, "mb": mb}
    if kind == "prepare":
        out.update(tokens=r["total"]["tokens"], blocks=r["total"]["blocks"])
    else:
        out.update(unk=r["unknown_rate"], tpw=r["tokens_per_word"])
    report_result(out)


def fresh(kind: str, cfg: dict) -> dict:
    return in_fresh_process([__file__, "--child", kind, json.dumps(cfg)])


def scaling(args, clock) -> Path:
    tok = bench_tokenizer(8192, args.quick)
    rows = []
    for n in [int(x) for x in args.shards.split(",")]:
        for streaming in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = {"output_dir": f"{tmp}/out", "tokenizer": str(tok), "block_size": 128, "progress": False,
                       "data": {"path": WIKI[:n], "streaming": streaming, "max_examples": args.max_examples}}
                if not streaming:  # warm datasets' Arrow cache of the raw shards
                    fresh("prepare", {**cfg, "output_dir": f"{tmp}/warm", "data": {**cfg["data"], "max_examples": 1},
                                      "validation_fraction": 0.0, "block_size": 2})
                r = fresh("prepare", cfg)
            rows.append([n, "streaming" if streaming else "arrow (mmap)", r["tokens"], r["blocks"], round(r["seconds"], 2),
                         int(r["tokens"] / r["seconds"]), int(r["peak_rss_mb"]), int(r["peak_anon_mb"])])
            print(rows[-1], flush=True)
    headers = ["shards", "reading", "tokens", "blocks", "seconds", "tokens/s", "peak RSS MiB", "peak anon MiB"]
    return save_results("bench_prepare-scaling", "prepare scaling, block size 128, WordPiece 8k, num_proc default "
                        "(one per core)", {"scaling": (headers, rows)}, clock, args.quick, args=vars(args))


def tokenizers(args, clock) -> Path:
    shards = int(args.shards.split(",")[-1])
    rows = []
    for model in ("wordpiece", "bpe", "byte_bpe", "unigram"):
        n = args.unigram_shards if model == "unigram" else shards
        with tempfile.TemporaryDirectory() as tmp:
            r = fresh("train-tokenizer", {"output_dir": f"{tmp}/tok", "tokenizer": {"model": model, "vocab_size": args.vocab_size},
                                          "data": {"streaming": True, "path": WIKI[:n], "max_examples": args.max_examples}})
        rows.append([model, n, round(r["mb"], 1), round(r["seconds"], 1), round(r["mb"] / r["seconds"], 2),
                     round(r["peak_rss_mb"]), f"{r['unk']:.4%}", round(r["tpw"], 3)])
        print(rows[-1], flush=True)
    headers = ["model", "shards", "MB of text", "seconds", "MB/s", "peak RSS MiB", "unknown rate", "tokens/word"]
    return save_results("bench_prepare-tokenizer", f"tokenizer training, vocab {args.vocab_size:,}, streaming from "
                        ".jsonl.gz", {"tokenizer": (headers, rows)}, clock, args.quick, args=vars(args))


def main(argv: list[str] | None = None) -> Path | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--scaling", action="store_true", help="time and peak memory on 1, 3, 10 shards")
    mode.add_argument("--tokenizer", action="store_true", help="tokenizer training per model")
    ap.add_argument("--shards", default=None, help="shards read (default 3; --scaling: 1,3,10; --tokenizer: 10)")
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="measurements per method, interleaved across methods")
    ap.add_argument("--unigram-shards", type=int, default=1, help="--tokenizer: Unigram (EM) is far slower per MB")
    ap.add_argument("--vocab-size", type=int, default=30000, help="--tokenizer: vocabulary size")
    ap.add_argument("--quick", action="store_true", help="end-to-end check in seconds: the first 100 articles of "
                    "shard 00, 1 repeat (numbers are no result; written under runs/bench/quick)")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help="(internal) one measurement")
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child[0], json.loads(args.child[1]))
    from nlp_ssl.runinfo import RunClock

    clock = RunClock()
    args.shards = args.shards or ("1,3,10" if args.scaling else "10" if args.tokenizer else "3")
    args.max_examples = None
    if args.quick:
        args.shards, args.unigram_shards, args.repeats, args.max_examples = "1", 1, 1, QUICK_ARTICLES
        args.vocab_size = 2000
    CACHE.mkdir(parents=True, exist_ok=True)
    return (scaling if args.scaling else tokenizers if args.tokenizer else throughput)(args, clock)


if __name__ == "__main__":
    main()
