"""`prepare` throughput against the Hugging Face `run_mlm.py` recipe, same tokenizer, same data, same run.

Baseline, written the way `run_mlm.py` does it (without `--line_by_line`): `Dataset.map(tokenize_function,
batched=True)` with `return_special_tokens_mask=True`, then `Dataset.map(group_texts, batched=True)` over
1000-example batches, each batch's tail dropped. Ours: `nlp_ssl.data.prepare.prepare_corpus` (Rust batch
tokenization, numpy packing that carries the tail across batches, Arrow writer), saved to disk.

Both start from the same loaded (Arrow-cached) data set, and both write their result to disk (the baseline
through `datasets`' map cache files). Reported: wall time, tokens per second (tokens in blocks / seconds),
blocks, dropped tokens, and the ratio baseline time / our time.

Usage: python benchmarks/bench_prepare.py [--shards 3] [--block-size 128]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from itertools import chain
from pathlib import Path

from common import DATA_DIR, WIKI, bench_tokenizer, machine, table, timer


def run_mlm_baseline(ds, tokenizer, block_size: int, num_proc: int | None, cache_dir: Path) -> dict:
    """The run_mlm.py preprocessing path (group_texts over 1000-example batches)."""
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
    total = sum(len(x) for x in tokenized["input_ids"])
    return {"blocks": len(grouped), "tokens_in": total, "dropped": total - len(grouped) * block_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--block-size", type=int, default=128)
    args = ap.parse_args()

    import datasets
    from transformers import AutoTokenizer

    from nlp_ssl.data.prepare import prepare_corpus
    from nlp_ssl.data.sources import DataSourceConfig, iter_text_batches, load_source

    datasets.disable_progress_bars()
    tok_dir = bench_tokenizer()
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    tokenizer.model_max_length = 10**9  # silence the long-sequence warning in the baseline; no truncation either way
    ds = load_source(DataSourceConfig(path=WIKI[: args.shards]), str(DATA_DIR), ["text"])
    ds = ds.select_columns(["text"])
    mb = sum(len(t.encode()) for b in iter_text_batches(ds, "text") for t in b) / 1e6
    rows = []
    results = {}
    for name, fn in [
        ("run_mlm.py recipe (map + group_texts, 1 proc)", lambda d: run_mlm_baseline(ds, tokenizer, args.block_size, None, d)),
        ("run_mlm.py recipe (map + group_texts, 2 procs)", lambda d: run_mlm_baseline(ds, tokenizer, args.block_size, 2, d)),
        ("nlp-ssl prepare (num_proc=1)", lambda d: prepare_corpus(iter_text_batches(ds, "text"), tokenizer, d / "out",
                                                                   args.block_size, 0.0, 0, 1, progress=False)),
        ("nlp-ssl prepare (num_proc=2)", lambda d: prepare_corpus(iter_text_batches(ds, "text"), tokenizer, d / "out",
                                                                   args.block_size, 0.0, 0, 2, progress=False)),
    ]:
        work = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
        t: dict = {}
        with timer(t):
            r = fn(work)
        shutil.rmtree(work)
        if "train" in r:
            r = {"blocks": r["train"]["blocks"], "tokens_in": r["train"]["tokens"], "dropped": r["train"]["dropped_tokens"]}
        results[name] = (t["seconds"], r)
        kept = r["blocks"] * args.block_size
        rows.append([name, round(t["seconds"], 2), int(kept / t["seconds"]), round(mb / t["seconds"], 2), r["blocks"], r["dropped"]])
    base = results["run_mlm.py recipe (map + group_texts, 1 proc)"][0]
    for row in rows:
        row.append(f"{base / row[1]:.2f}x")
    print(f"\nprepare: {args.shards} Wikipedia shard(s), {mb:.1f} MB of text, block size {args.block_size}, "
          f"WordPiece 8k, {machine()}")
    print(table(["method", "seconds", "tokens/s (in blocks)", "MB/s", "blocks", "dropped tokens", "speed vs run_mlm 1 proc"], rows))


if __name__ == "__main__":
    main()
