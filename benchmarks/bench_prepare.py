"""`prepare` throughput against the Hugging Face `run_mlm.py` recipe, same tokenizer, same data, same run.

Baseline, written the way `run_mlm.py` does it (without `--line_by_line`): `Dataset.map(tokenize_function,
batched=True)` with `return_special_tokens_mask=True`, then `Dataset.map(group_texts, batched=True)` over
1000-example batches, each batch's tail dropped. Ours: `nlp_ssl.data.prepare.prepare_corpus` (Rust batch
tokenization, numpy packing that carries the tail across batches, Arrow writer), saved to disk.

Both start from the same loaded (Arrow-cached) data set, and both write their result to disk (the baseline
through `datasets`' map cache files). Only the preparation is timed: counting blocks and dropped tokens afterwards
(a pass over the baseline's output) is outside the timer. Every method runs `--repeats` times, interleaved.
Reported: median wall time, tokens per second (tokens in blocks / seconds), blocks, dropped tokens, and the median
(min-max) over repeats of baseline time / method time.

Usage:
    python benchmarks/bench_prepare.py --quick             # end-to-end check (2,000 articles)
    python benchmarks/bench_prepare.py [--shards 3] [--block-size 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from itertools import chain
from pathlib import Path

from common import DATA_DIR, WIKI, bench_tokenizer, machine, median, ratio, table, timer


def run_mlm_baseline(ds, tokenizer, block_size: int, num_proc: int | None, cache_dir: Path):
    """The run_mlm.py preprocessing path (group_texts over 1000-example batches) -> (tokenized, grouped)."""
    def tokenize_function(examples):
        return tokenizer(examples["text"], return_special_tokens_mask=True)

    def group_texts(examples):
        concatenated = {k: list(chain(*examples[k])) for k in examples.keys()}
        total_length = len(concatenated[list(examples.keys())[0]])
        total_length = (total_length // block_size) * block_size
        return {k: [t[i: i + block_size] for i in range(0, total_length, block_size)] for k, t in concatenated.items()}

    tokenized = ds.map(tokenize_function, batched=True, num_proc=num_proc, remove_columns=ds.column_names,
                       load_from_cache_file=False, cache_file_name=str(cache_dir / "tok.arrow"))
    grouped = tokenized.map(group_texts, batched=True, num_proc=num_proc, load_from_cache_file=False,
                            cache_file_name=str(cache_dir / "grouped.arrow"))
    return tokenized, grouped


def baseline_stats(result, block_size: int) -> dict:
    """Blocks and dropped tokens of the baseline's output (a statistics pass, kept out of the timer)."""
    tokenized, grouped = result
    total = sum(len(x) for x in tokenized["input_ids"])
    return {"blocks": len(grouped), "tokens_in": total, "dropped": total - len(grouped) * block_size}


def ours_stats(report: dict) -> dict:
    return {"blocks": report["train"]["blocks"], "tokens_in": report["train"]["tokens"],
            "dropped": report["train"]["dropped_tokens"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="measurements per method, interleaved across methods")
    ap.add_argument("--quick", action="store_true", help="end-to-end check: the first 2,000 articles, 1 repeat")
    args = ap.parse_args()
    max_examples = None
    if args.quick:
        args.shards, args.repeats, max_examples = 1, 1, 2000

    import datasets
    from transformers import AutoTokenizer

    from nlp_ssl.data.prepare import prepare_corpus
    from nlp_ssl.data.sources import DataSourceConfig, iter_text_batches, load_source

    datasets.disable_progress_bars()
    tok_dir = bench_tokenizer(8192, max_examples)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    tokenizer.model_max_length = 10**9  # silence the long-sequence warning in the baseline; no truncation either way
    ds = load_source(DataSourceConfig(path=WIKI[: args.shards], max_examples=max_examples), str(DATA_DIR), ["text"])
    ds = ds.select_columns(["text"])
    mb = sum(len(t.encode()) for b in iter_text_batches(ds, "text") for t in b) / 1e6
    bs = args.block_size
    methods = {
        "run_mlm.py recipe (map + group_texts, 1 proc)": (lambda d: run_mlm_baseline(ds, tokenizer, bs, None, d), baseline_stats),
        "run_mlm.py recipe (map + group_texts, 2 procs)": (lambda d: run_mlm_baseline(ds, tokenizer, bs, 2, d), baseline_stats),
        "nlp-ssl prepare (num_proc=1)": (lambda d: prepare_corpus(iter_text_batches(ds, "text"), tokenizer, d / "out",
                                                                   bs, 0.0, 0, 1, progress=False), lambda r, _: ours_stats(r)),
        "nlp-ssl prepare (num_proc=2)": (lambda d: prepare_corpus(iter_text_batches(ds, "text"), tokenizer, d / "out",
                                                                   bs, 0.0, 0, 2, progress=False), lambda r, _: ours_stats(r)),
    }
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    stats: dict[str, dict] = {}
    for rep in range(args.repeats):  # interleaved: every method once per repeat
        for name, (fn, stat) in methods.items():
            work = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
            t: dict = {}
            with timer(t):
                result = fn(work)
            stats[name] = stat(result, bs)  # outside the timer
            del result
            shutil.rmtree(work)
            seconds[name].append(t["seconds"])
            print(f"  repeat {rep + 1}/{args.repeats} {name}: {t['seconds']:.2f} s", flush=True)
    base = seconds[next(iter(methods))]
    rows = []
    for name, secs in seconds.items():
        s, r = median(secs), stats[name]
        rows.append([name, round(s, 2), int(r["blocks"] * bs / s), round(mb / s, 2), r["blocks"], r["dropped"],
                     ratio(secs, base, higher_is_better=False)])
    print(f"\nprepare: {args.shards} Wikipedia shard(s){f' (first {max_examples} articles)' if max_examples else ''}, "
          f"{mb:.1f} MB of text, block size {bs}, WordPiece 8k, {args.repeats} interleaved repeat(s), median seconds, "
          f"speed ratio = median (min-max) over repeats; {machine()}")
    print(table(["method", "seconds", "tokens/s (in blocks)", "MB/s", "blocks", "dropped tokens",
                 "speed vs run_mlm 1 proc"], rows))


if __name__ == "__main__":
    main()
