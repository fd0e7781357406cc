"""Pretraining against the Hugging Face reference recipe: throughput and model FLOPs utilisation (default), or
quality at equal wall clock (`--quality`), same model size, vocabulary, sequence length and batch, in the same run.

Reference (`run_mlm.py` as its users run it): stock `BertForMaskedLM` (dropout 0.1) + `DataCollatorForLanguageModeling
(mlm_probability=0.15)` + `Trainer`, on the same packed blocks, with the `special_tokens_mask` column precomputed in
the dataset, as `run_mlm.py`'s tokenize step does (`return_special_tokens_mask=True`), before any timer. Under the
Trainer's default `remove_unused_columns=True` that column is dropped before the collator (it is no argument of the
model's forward), so the collator rebuilds the mask row by row anyway; the baseline therefore sets
`remove_unused_columns=False` (the faster reference), and the Trainer-defaults path is its own row.
Ours: `nlp-ssl pretrain` (sparse MLM head, per-example-seeded collator, packed blocks, dropout 0), BERT, mask 0.15.

Throughput rows (ablations: each changes one thing, so each speed-up is attributed):
    reference                          the baseline (1.00x)
    reference, Trainer defaults        the precomputed mask dropped by remove_unused_columns
    reference, dropout 0               what dropout costs the reference
    nlp-ssl, dense MLM head            ours with the full-sequence head: the sparse head's share
    nlp-ssl, dropout 0.1               ours with the reference's dropout: dropout's share
    nlp-ssl                            ours as shipped
Every row is measured `--repeats` times, interleaved, each in a fresh process; tokens/s is the median over
5-step logging windows after the warm-up steps (model, data and `Trainer` construction are outside the windows).
A row's ratio is the median over repeats of (its tokens/s / the baseline's in the same repeat), with its range.

Model FLOPs per token (training, fwd + bwd = 3 x fwd):
    6 x (encoder-layer parameters + f x (H^2 + H x V))  +  12 x layers x T x H
the second term being the MLM head on the share f of positions where it runs (1 dense, the mask rate sparse), the
last attention (QK^T and AV). MFU = FLOPs/token x tokens/s over the fp32 matmul peak measured at the start.

`--quality`: both train for the same wall clock (`--minutes`) on Wikipedia shards 00-02, batch 64, peak rate 1e-3
with 6% warm-up and linear decay. The reference's step schedule is sized to the budget from a 30-step throughput
probe and stopped at the deadline (its clock starts at `on_train_begin`); ours uses `train.max_time_minutes`. Both
models are scored alike: full-vocabulary loss and accuracy on the same validation blocks, masked once (seeded).

Usage:
    python benchmarks/bench_pretrain.py --quick                      # end-to-end check (numbers are no result)
    python benchmarks/bench_pretrain.py --vocab 8192,30522           # tiny/mini at T=128, 3 repeats
    python benchmarks/bench_pretrain.py --grid                       # tiny, mini, small x T=128, 512
    python benchmarks/bench_pretrain.py --quality --minutes 8        # validation loss after 8 minutes each
    python benchmarks/bench_pretrain.py --device cuda --presets base --bf16   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

from harness import CACHE, in_fresh_process, interleaved, median, ratio, report_result, save_results, wiki_blocks

# name -> (kind, settings); the first row is the baseline every ratio is taken against
ROWS = {
    "reference (run_mlm, precomputed special_tokens_mask)": ("reference", {"dropout": 0.1, "keep_mask": True}),
    "reference, Trainer defaults (mask column dropped)": ("reference", {"dropout": 0.1, "keep_mask": False}),
    "reference, dropout 0": ("reference", {"dropout": 0.0, "keep_mask": True}),
    "nlp-ssl, dense MLM head": ("ours", {"dropout": 0.0, "sparse": False}),
    "nlp-ssl, dropout 0.1": ("ours", {"dropout": 0.1, "sparse": True}),
    "nlp-ssl": ("ours", {"dropout": 0.0, "sparse": True}),
}
QUALITY = {"lr": 1e-3, "warmup": 0.06}  # --quality: batch 64 (--quick: 8)


def matmul_peak_gflops(device: str, dtype_name: str = "float32", n: int = 2048, reps: int = 10) -> float:
    """Best sustained GFLOP/s of an n x n matrix multiply (the peak that MFU is measured against)."""
    import torch

    a, b = (torch.randn(n, n, device=device, dtype=getattr(torch, dtype_name)) for _ in range(2))
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
    return 6 * (layer_params + head_share * (H * H + H * V)) + 12 * L * T * H


def prepare_report(blocks: Path) -> dict:
    """What `nlp-ssl prepare` recorded about the blocks (tokenizer, block size)."""
    from nlp_ssl.data.prepare import REPORT_FILE

    return json.loads((blocks / REPORT_FILE).read_text())


def steady_tokens_per_second(history: list[dict], warmup: int) -> float:
    return statistics.median(h["tokens_per_second"] for h in history
                             if "tokens_per_second" in h and h.get("step", 0) > warmup)


def reference_parts(blocks: Path, preset: str, dropout: float):
    """The reference's tokenizer, training blocks (with run_mlm.py's precomputed `special_tokens_mask` column,
    built before any timer) and a model factory (stock BertForMaskedLM, seed 0)."""
    import datasets
    import numpy as np
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from nlp_ssl.modeling import PRESETS

    tok = AutoTokenizer.from_pretrained(prepare_report(blocks)["tokenizer"])
    special = np.zeros(len(tok), dtype=np.int8)
    special[tok.all_special_ids] = 1
    ds = datasets.load_from_disk(str(blocks))["train"]
    ds = ds.map(lambda b: {"special_tokens_mask": special[np.asarray(b["input_ids"])]}, batched=True,
                remove_columns=[c for c in ds.column_names if c != "input_ids"])
    L, H, A, I = PRESETS[preset]

    def model():
        torch.manual_seed(0)
        return BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=H, num_hidden_layers=L, num_attention_heads=A,
                                          intermediate_size=I, max_position_embeddings=max(512, len(ds[0]["input_ids"])),
                                          pad_token_id=tok.pad_token_id, hidden_dropout_prob=dropout,
                                          attention_probs_dropout_prob=dropout))
    return tok, ds, model


def reference_trainer(blocks: Path, preset: str, dropout: float, keep_mask: bool, out: str, callbacks=(), **train):
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    tok, ds, model = reference_parts(blocks, preset, dropout)
    args = TrainingArguments(output_dir=out, save_strategy="no", report_to=[], disable_tqdm=True, seed=0,
                             remove_unused_columns=not keep_mask, **train)
    return Trainer(model=model(), args=args, train_dataset=ds, callbacks=list(callbacks),
                   data_collator=DataCollatorForLanguageModeling(tok, mlm_probability=0.15))


def run_reference(blocks: Path, preset: str, batch: int, steps: int, warmup: int, bf16: bool, device: str,
                  dropout: float, keep_mask: bool) -> dict:
    from nlp_ssl.modeling import PRESETS
    from nlp_ssl.training import trainer_callbacks

    _, Throughput, _ = trainer_callbacks()
    with tempfile.TemporaryDirectory() as tmp:
        T = prepare_report(blocks)["block_size"]
        trainer = reference_trainer(blocks, preset, dropout, keep_mask, tmp, [Throughput(batch * T)],
                                    per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-3,
                                    warmup_steps=0.06, logging_steps=5, bf16=bf16, use_cpu=device == "cpu")
        trainer.train()
        return {"tokens_per_second": steady_tokens_per_second(trainer.state.log_history, warmup), "T": T,
                "V": trainer.model.config.vocab_size, "dims": PRESETS[preset]}


def pretrain_ours(blocks: Path, out: str, preset: str, batch: int, lr: float = 1e-3, model: dict | None = None,
                  impl: dict | None = None, **train) -> dict:
    from harness import cli

    return cli("pretrain", {"output_dir": out, "data": str(blocks), "impl": impl or {},
                            "model": {"arch": "bert", "preset": preset, **(model or {})},
                            "train": {"per_device_train_batch_size": batch, "learning_rate": lr, "eval_steps": 0,
                                      "save_steps": 0, "max_eval_samples": 64, "report_to": ["none"], **train}})


def run_ours(blocks: Path, preset: str, batch: int, steps: int, warmup: int, bf16: bool, compile_: bool,
             dropout: float, sparse: bool) -> dict:
    from nlp_ssl.layout import LOG_HISTORY_FILE
    from nlp_ssl.modeling import PRESETS

    with tempfile.TemporaryDirectory() as tmp:
        pretrain_ours(blocks, f"{tmp}/run", preset, batch, model={"dropout": dropout, "sparse_prediction": sparse},
                      impl={"torch_compile": compile_}, max_steps=steps, logging_steps=5, bf16=bf16)
        history = json.loads((Path(tmp) / "run" / LOG_HISTORY_FILE).read_text())
    return {"tokens_per_second": steady_tokens_per_second(history, warmup), "dims": PRESETS[preset]}


def child(kind: str, kw: dict) -> None:
    """One measurement in this (fresh) process: `--child KIND JSON`."""
    from harness import peak_rss_mb

    device, blocks = kw.pop("device"), Path(kw.pop("blocks"))
    r = run_reference(blocks, device=device, **kw) if kind == "reference" else run_ours(blocks, **kw)
    if device == "cuda":
        import torch

        r["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        r["peak_mb"] = peak_rss_mb()
    report_result(r)


def throughput(args, clock) -> Path:
    presets = ["tiny", "mini", "small"] if args.grid and not args.quick else args.presets.split(",")
    if args.grid and not args.batch_tokens:
        args.batch_tokens = 4096  # 32 x 128 and 8 x 512: the same tokens per step at both lengths
    seqs = [128, 512] if args.grid else [int(s) for s in args.seq.split(",")]
    peak = matmul_peak_gflops(args.device, "bfloat16" if args.bf16 else "float32", n=512 if args.quick else 2048)
    print(f"matmul peak ({'bf16' if args.bf16 else 'fp32'}, {args.device}): {peak:.1f} GFLOP/s", flush=True)
    rows_spec = dict(ROWS)
    if args.compile:
        rows_spec["nlp-ssl + compile"] = ("ours", {"dropout": 0.0, "sparse": True, "compile_": True})
    out = []
    for V, T in [(int(v), t) for v in args.vocab.split(",") for t in seqs]:
        blocks = wiki_blocks(T, V, quick=args.quick)
        batch = args.batch_tokens // T if args.batch_tokens else args.batch
        for preset in presets:
            common = dict(blocks=str(blocks), preset=preset, batch=batch, steps=args.steps, warmup=args.warmup,
                          bf16=args.bf16, device=args.device)

            def measure(kind: str, settings: dict):
                kw = {**common, **settings, **({"compile_": settings.get("compile_", False)} if kind == "ours" else {})}
                return lambda: in_fresh_process([__file__, "--child", kind, json.dumps(kw)])

            results = interleaved({name: measure(*spec) for name, spec in rows_spec.items()}, args.repeats,
                                  show=lambda m: f"{preset} T={T} {m['tokens_per_second']:,.0f} tokens/s")
            base = [m["tokens_per_second"] for m in next(iter(results.values()))]
            ref = next(iter(results.values()))[0]
            L, H, A, I = ref["dims"]
            for name, (kind, settings) in rows_spec.items():
                tps = [m["tokens_per_second"] for m in results[name]]
                f = flops_per_token(L, H, I, ref["V"], T, 0.15 if kind == "ours" and settings.get("sparse") else 1.0)
                out.append([preset, V, T, batch, name, int(median(tps)), " / ".join(f"{x:,.0f}" for x in tps),
                            ratio(tps, base), f"{f * median(tps) / 1e9 / peak:.1%}",
                            int(median([m["peak_mb"] for m in results[name]]))])
    title = (f"pretraining throughput, BERT, WordPiece, {args.steps} steps (median window after {args.warmup}), "
             f"{args.repeats} interleaved repeat(s), ratio = median (min-max) over repeats vs the first row, "
             f"{'bf16' if args.bf16 else 'fp32'}, {args.device}; matmul peak {peak:.1f} GFLOP/s")
    headers = ["preset", "vocab", "seq", "batch", "recipe", "tokens/s (median)", "per repeat", "vs reference", "MFU",
               "peak mem MiB"]
    return save_results("bench_pretrain-grid" if args.grid else "bench_pretrain", title, {"throughput": (headers, out)},
                        clock, args.quick, args=vars(args), matmul_peak_gflops=peak)


def score(model_dir: str, eval_set) -> dict:
    """Full-vocabulary masked-LM loss and accuracy of a saved model on pre-masked blocks."""
    import torch
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(model_dir).eval()
    total = correct = count = 0.0
    with torch.no_grad():
        for i in range(0, len(eval_set), 64):
            batch = eval_set[i:i + 64]
            ids, labels = torch.tensor(batch["input_ids"]), torch.tensor(batch["labels"])
            logits = model(input_ids=ids).logits  # (B, T, V): dense, every position, full vocabulary
            sel = labels != -100
            total += torch.nn.functional.cross_entropy(logits[sel], labels[sel], reduction="sum").item()
            correct += (logits[sel].argmax(-1) == labels[sel]).sum().item()
            count += sel.sum().item()
    return {"val_loss": total / count, "val_accuracy": correct / count}


def quality_reference(blocks: Path, preset: str, batch: int, seconds: float, out: str, probe_steps: int) -> dict:
    from transformers import TrainerCallback

    class Clock(TrainerCallback):  # step end times; with `deadline`, stops there (the clock starts with training)
        def __init__(self, deadline: float | None = None):
            self.deadline, self.times = deadline, []

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.monotonic()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.monotonic())
            if self.deadline is not None and self.times[-1] - self.t0 >= self.deadline:
                control.should_training_stop = True

    def trainer(max_steps: int, clock: Clock):
        return reference_trainer(blocks, preset, 0.1, True, out, [clock], per_device_train_batch_size=batch,
                                 max_steps=max_steps, learning_rate=QUALITY["lr"], warmup_steps=QUALITY["warmup"],
                                 weight_decay=0.01, logging_steps=50, use_cpu=True)

    probe = Clock()
    trainer(probe_steps, probe).train()
    skip = probe_steps // 3  # steady state: the first steps pay one-off costs
    per_step = (probe.times[-1] - probe.times[skip - 1]) / (probe_steps - skip)
    steps = max(1, int(seconds / per_step))  # the schedule is sized to end at the deadline
    tr = trainer(steps, Clock(seconds))
    t = time.monotonic()
    tr.train()
    took = time.monotonic() - t
    tr.save_model(out)
    return {"steps": tr.state.global_step, "planned_steps": steps, "seconds": took}


def quality(args, clock) -> Path:
    import datasets

    from nlp_ssl.objectives.collators import MLMCollator
    from nlp_ssl.objectives.masking import MaskingConfig
    from nlp_ssl.objectives.mlm import masked_eval_set
    from nlp_ssl.tokenization import load_tokenizer

    blocks = wiki_blocks(128, 8192, shards=1 if args.quick else 3, quick=args.quick)
    tok = load_tokenizer(prepare_report(blocks)["tokenizer"])
    val = datasets.load_from_disk(str(blocks))["validation"]
    eval_set = masked_eval_set(val, MLMCollator.from_tokenizer(tok, MaskingConfig()), args.eval_blocks, seed=1234)
    seconds, batch = args.minutes * 60, args.batch
    runs = {"reference (stock BERT, dropout 0.1, dense head)":
            lambda out: quality_reference(blocks, args.preset, batch, seconds, out, 9 if args.quick else 30),
            "nlp-ssl pretrain": lambda out: (lambda m: {"steps": m["steps"], "planned_steps": "by time",
                                                        "seconds": m["train_runtime_s"]})(
                pretrain_ours(blocks, out, args.preset, batch, QUALITY["lr"], warmup_ratio=QUALITY["warmup"],
                              max_time_minutes=args.minutes, logging_steps=50))}
    rows = []
    for name, fn in runs.items():
        with tempfile.TemporaryDirectory() as tmp:
            r = fn(tmp)
            s = score(tmp, eval_set)
        rows.append([name, round(r["seconds"], 1), r["steps"], r["planned_steps"],
                     f"{r['steps'] * batch * 128 / 1e6:.2f}M", round(s["val_loss"], 3),
                     round(math.exp(s["val_loss"]), 1), f"{s['val_accuracy']:.2%}"])
    title = (f"quality at equal wall clock ({args.minutes:g} min), BERT {args.preset}, WordPiece 8k, T=128, batch "
             f"{batch}, lr {QUALITY['lr']}, {len(eval_set)} validation blocks masked once")
    headers = ["recipe", "train s", "steps", "planned", "tokens", "val loss", "val ppl", "val acc"]
    return save_results("bench_pretrain-quality", title, {"quality": (headers, rows)}, clock, args.quick, args=vars(args))


def main(argv: list[str] | None = None) -> Path | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", default="tiny,mini")
    ap.add_argument("--seq", default="128")
    ap.add_argument("--batch", type=int, default=None, help="blocks per step (default 32; --quality: 64)")
    ap.add_argument("--batch-tokens", type=int, default=0,
                    help="if set, batch = batch_tokens // seq (same tokens per step at every length)")
    ap.add_argument("--vocab", default="8192", help="WordPiece vocabulary sizes, e.g. 8192,30522")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3, help="measurements per row, interleaved across rows")
    ap.add_argument("--grid", action="store_true", help="tiny, mini, small x 128, 512")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--compile", action="store_true", help="also measure ours with torch.compile")
    ap.add_argument("--quality", action="store_true", help="validation loss after the same wall clock, not speed")
    ap.add_argument("--minutes", type=float, default=8.0, help="--quality: the wall-clock budget of each")
    ap.add_argument("--preset", default="tiny", help="--quality: the model size")
    ap.add_argument("--eval-blocks", type=int, default=2000, help="--quality: validation blocks scored")
    ap.add_argument("--quick", action="store_true", help="end-to-end check in seconds: tiny, few steps, 1 repeat, "
                    "100 articles (numbers are no result; written under runs/bench/quick)")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help="(internal) one measurement")
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child[0], json.loads(args.child[1]))
    from nlp_ssl.runinfo import RunClock

    clock = RunClock()  # load average at the start, for the results' provenance
    if args.quick:
        args.presets, args.seq, args.steps, args.warmup, args.repeats = "tiny", "128", 8, 2, 1
        args.minutes, args.eval_blocks, args.batch = 0.05, 32, 8
    args.batch = args.batch or (64 if args.quality else 32)
    CACHE.mkdir(parents=True, exist_ok=True)
    return quality(args, clock) if args.quality else throughput(args, clock)


if __name__ == "__main__":
    main()
