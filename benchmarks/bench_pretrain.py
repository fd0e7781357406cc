"""Pretraining throughput and model FLOPs utilisation: `nlp-ssl pretrain` against the Hugging Face reference
recipe, same model size, vocabulary, sequence length and batch, in the same run, with ablations that attribute
the speed-up.

Reference (`run_mlm.py` as its users run it): stock `BertForMaskedLM` (dropout 0.1) + `DataCollatorForLanguageModeling
(mlm_probability=0.15)` + `Trainer`, on the same packed blocks, with the `special_tokens_mask` column precomputed in
the dataset, as `run_mlm.py`'s tokenize step does (`return_special_tokens_mask=True`). Precomputing happens before
any timer. Note: under the Trainer's default `remove_unused_columns=True` that column is dropped before the collator
(it is not an argument of the model's forward), so the collator rebuilds the mask row by row anyway; the baseline
therefore sets `remove_unused_columns=False` so the precomputed mask reaches the collator (the faster reference),
and the Trainer-defaults path is shown as its own row.
Ours: `nlp-ssl pretrain` (sparse MLM head, per-example-seeded collator, packed-block dataset, dropout 0), BERT
architecture, mask rate 0.15.

Rows (ablations: each changes one thing, so each speed-up is attributed):
    reference                          the baseline (1.00x)
    reference, Trainer defaults        the precomputed mask dropped by remove_unused_columns
    reference, dropout 0               what dropout costs the reference
    nlp-ssl, dense MLM head            ours with the full-sequence head: the sparse head's share
    nlp-ssl, dropout 0.1               ours with the reference's dropout: dropout's share
    nlp-ssl                            ours as shipped
Every row is measured `--repeats` times, interleaved (all rows, then all rows again), each in a fresh process;
tokens/s is the median over 5-step logging windows after the warm-up steps (the same callback for all rows;
model, dataset and `Trainer` construction are outside the windows). A row's ratio is the median over repeats of
(its tokens/s / the baseline's tokens/s in the same repeat), with the range (min-max) beside it.

Model FLOPs per token (training, fwd + bwd = 3 x fwd):
    6 x (encoder-layer parameters + f x (H^2 + H x V))  +  12 x layers x T x H
where the second term in the parentheses is the MLM head (transform and decoder), counted on the share f of
positions where it runs (1 for a dense head, the mask rate for the sparse one), and the last term is attention
(QK^T and AV). MFU = FLOPs/token x tokens/s over the fp32 matrix-multiply peak measured at the start of the run.

Usage:
    python benchmarks/bench_pretrain.py --quick                # end-to-end check in a few minutes (tiny, 15 steps)
    python benchmarks/bench_pretrain.py                        # table 1+2: tiny/mini at T=128, 3 repeats
    python benchmarks/bench_pretrain.py --grid --batch-tokens 4096   # table 4: tiny, mini, small x T=128, 512
    python benchmarks/bench_pretrain.py --device cuda --presets base --bf16   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import DATA_DIR, RESULTS, WIKI, bench_tokenizer, machine, median, ratio, save_results, table

# name -> (kind, settings); the first row is the baseline every ratio is taken against
ROWS = {
    "reference (run_mlm, precomputed special_tokens_mask)": ("reference", {"dropout": 0.1, "keep_mask": True}),
    "reference, Trainer defaults (mask column dropped)": ("reference", {"dropout": 0.1, "keep_mask": False}),
    "reference, dropout 0": ("reference", {"dropout": 0.0, "keep_mask": True}),
    "nlp-ssl, dense MLM head": ("ours", {"dropout": 0.0, "sparse": False}),
    "nlp-ssl, dropout 0.1": ("ours", {"dropout": 0.1, "sparse": True}),
    "nlp-ssl": ("ours", {"dropout": 0.0, "sparse": True}),
}


def matmul_peak_gflops(device: str, dtype_name: str = "float32", n: int = 2048, reps: int = 10) -> float:
    """Best sustained GFLOP/s of an n x n matrix multiply (the peak that MFU is measured against)."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    for _ in range(3):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
    return best


def flops_per_token(L: int, H: int, I: int, V: int, T: int, head_share: float) -> float:
    layer_params = L * (4 * H * H + 4 * H + 2 * H * I + I + H + 4 * H)  # attention, FFN, two LayerNorms
    head = H * H + H * V
    return 6 * (layer_params + head_share * head) + 12 * L * T * H


def prepared_blocks(block_size: int, vocab: int, max_examples: int | None = None) -> Path:
    """Wikipedia shard 00 packed into blocks of `block_size` with a benchmark WordPiece tokenizer (cached)."""
    from nlp_ssl.cli import run

    out = RESULTS / (f"blocks-wiki00-wp{vocab}-{block_size}" + (f"-first{max_examples}" if max_examples else ""))
    run("prepare", {"output_dir": str(out), "tokenizer": str(bench_tokenizer(vocab, max_examples)),
                    "block_size": block_size, "data": {"path": WIKI[0], "max_examples": max_examples},
                    "progress": False}, str(DATA_DIR))
    return out


def steady_tokens_per_second(history: list[dict], warmup: int) -> float:
    vals = [h["tokens_per_second"] for h in history if "tokens_per_second" in h and h.get("step", 0) > warmup]
    return statistics.median(vals)


def with_special_tokens_mask(ds, tok):
    """The blocks with run_mlm.py's precomputed `special_tokens_mask` column (1 on special tokens)."""
    import numpy as np

    special = np.zeros(len(tok), dtype=np.int8)
    special[tok.all_special_ids] = 1
    return ds.map(lambda b: {"special_tokens_mask": special[np.asarray(b["input_ids"])]}, batched=True,
                  remove_columns=[c for c in ds.column_names if c != "input_ids"])


def run_reference(blocks: Path, preset: str, batch: int, steps: int, warmup: int, bf16: bool, device: str,
                  dropout: float, keep_mask: bool) -> dict:
    import datasets
    import torch
    from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, Trainer,
                              TrainingArguments)

    from nlp_ssl.modeling import PRESETS
    from nlp_ssl.training import trainer_callbacks

    report = json.loads((blocks / "prepare_report.json").read_text())
    tok = AutoTokenizer.from_pretrained(report["tokenizer"])
    ds = with_special_tokens_mask(datasets.load_from_disk(str(blocks))["train"], tok)  # before any timer
    T = len(ds[0]["input_ids"])
    L, H, A, I = PRESETS[preset]
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=H, num_hidden_layers=L, num_attention_heads=A,
                                       intermediate_size=I, max_position_embeddings=max(512, T), pad_token_id=tok.pad_token_id,
                                       hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout))
    _, Throughput, _ = trainer_callbacks()
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-3,
                                 warmup_steps=0.06, logging_steps=5, save_strategy="no", report_to=[], bf16=bf16,
                                 use_cpu=device == "cpu", disable_tqdm=True, remove_unused_columns=not keep_mask)
        trainer = Trainer(model=model, args=args, train_dataset=ds,
                          data_collator=DataCollatorForLanguageModeling(tok, mlm_probability=0.15),
                          callbacks=[Throughput(batch * T)])
        trainer.train()
        history = trainer.state.log_history
    return {"tokens_per_second": steady_tokens_per_second(history, warmup), "T": T, "V": len(tok), "dims": (L, H, A, I)}


def run_ours(blocks: Path, preset: str, batch: int, steps: int, warmup: int, bf16: bool, compile_: bool,
             dropout: float, sparse: bool) -> dict:
    from nlp_ssl.cli import run
    from nlp_ssl.modeling import PRESETS

    with tempfile.TemporaryDirectory() as tmp:
        run("pretrain", {
            "output_dir": f"{tmp}/run", "data": str(blocks),
            "model": {"arch": "bert", "preset": preset, "dropout": dropout, "sparse_prediction": sparse},
            "train": {"per_device_train_batch_size": batch, "max_steps": steps, "learning_rate": 1e-3, "eval_steps": 0,
                      "save_steps": 0, "logging_steps": 5, "max_eval_samples": 64, "report_to": ["none"], "bf16": bf16},
            "impl": {"torch_compile": compile_}})
        history = json.loads((Path(tmp) / "run" / "log_history.json").read_text())
    return {"tokens_per_second": steady_tokens_per_second(history, warmup), "dims": PRESETS[preset]}


def peak_memory_mb(device: str) -> float:
    import resource

    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_in_child(kind: str, **kw) -> dict:
    """Run one measurement in a fresh process (`--child`), so peak memory is its own."""
    import subprocess

    r = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(kw)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-4000:])
    return json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT ")][-1][7:])


def child(kind: str, kw: dict) -> None:
    device = kw.pop("device")
    blocks = Path(kw.pop("blocks"))
    if kind == "reference":
        r = run_reference(blocks, device=device, **kw)
    else:
        r = run_ours(blocks, **kw)
    r["peak_mb"] = peak_memory_mb(device)
    print("RESULT", json.dumps(r))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", default="tiny,mini")
    ap.add_argument("--seq", default="128")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batch-tokens", type=int, default=0,
                    help="if set, batch = batch_tokens // seq (same tokens per step at every length)")
    ap.add_argument("--vocab", default="8192", help="WordPiece vocabulary sizes, e.g. 8192,30522")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3, help="measurements per row, interleaved across rows")
    ap.add_argument("--grid", action="store_true", help="tiny, mini, small x 128, 512 (table 4)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--compile", action="store_true", help="also measure ours with torch.compile")
    ap.add_argument("--quick", action="store_true",
                    help="end-to-end check: tiny, T=128, 15 steps, 1 repeat, tokenizer and blocks from 2,000 articles")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], json.loads(args.child[1]))
    from nlp_ssl.runinfo import RunClock

    clock = RunClock()  # load average at the start, for the results' provenance
    max_examples = None
    if args.quick:
        args.presets, args.seq, args.steps, args.warmup, args.repeats, max_examples = "tiny", "128", 15, 5, 1, 2000
    presets = ["tiny", "mini", "small"] if args.grid else args.presets.split(",")
    if args.grid and not args.batch_tokens:
        args.batch_tokens = 4096  # 32 x 128 and 8 x 512: the same tokens per step at both lengths
    seqs = [128, 512] if args.grid else [int(s) for s in args.seq.split(",")]
    peak = matmul_peak_gflops(args.device, "bfloat16" if args.bf16 else "float32")
    print(f"matmul peak ({'bf16' if args.bf16 else 'fp32'}, {args.device}): {peak:.1f} GFLOP/s", flush=True)
    rows_spec = dict(ROWS)
    if args.compile:
        rows_spec["nlp-ssl + compile"] = ("ours", {"dropout": 0.0, "sparse": True, "compile_": True})
    out = []
    for V, T in [(int(v), t) for v in args.vocab.split(",") for t in seqs]:
        blocks = prepared_blocks(T, V, max_examples)
        batch = args.batch_tokens // T if args.batch_tokens else args.batch
        for preset in presets:
            common = dict(blocks=str(blocks), preset=preset, batch=batch, steps=args.steps, warmup=args.warmup,
                          bf16=args.bf16, device=args.device)
            results: dict[str, list[dict]] = {name: [] for name in rows_spec}
            for r in range(args.repeats):  # interleaved: every row once per repeat
                for name, (kind, settings) in rows_spec.items():
                    kw = {**common, **settings}
                    if kind == "ours":
                        kw.setdefault("compile_", False)
                    results[name].append(measure_in_child(kind, **kw))
                    print(f"  {preset} T={T} repeat {r + 1}/{args.repeats} {name}: "
                          f"{results[name][-1]['tokens_per_second']:,.0f} tokens/s", flush=True)
            base_name = next(iter(rows_spec))
            base = [m["tokens_per_second"] for m in results[base_name]]
            ref = results[base_name][0]
            L, H, A, I = ref["dims"]
            for name, (kind, settings) in rows_spec.items():
                tps = [m["tokens_per_second"] for m in results[name]]
                share = 0.15 if kind == "ours" and settings.get("sparse") else 1.0
                f = flops_per_token(L, H, I, ref["V"], T, share)
                out.append([preset, V, T, batch, name, int(median(tps)), ratio(tps, base),
                            f"{f * median(tps) / 1e9 / peak:.1%}", int(median([m["peak_mb"] for m in results[name]]))])
                print(out[-1], flush=True)
    print(f"\npretraining throughput, BERT, WordPiece, {args.steps} steps (median window after {args.warmup}), "
          f"{args.repeats} interleaved repeat(s), ratio = median (min-max) over repeats vs the first row, "
          f"{'bf16' if args.bf16 else 'fp32'}, {args.device}; matmul peak {peak:.1f} GFLOP/s; {machine()}")
    headers = ["preset", "vocab", "seq", "batch", "recipe", "tokens/s (median)", "vs reference", "MFU", "peak mem MiB"]
    print(table(headers, out))
    save_results("bench_pretrain" + ("-quick" if args.quick else ""),
                 {"args": vars(args), "matmul_peak_gflops": peak, "headers": headers, "rows": out}, clock)


if __name__ == "__main__":
    main()
