"""Fine-tuning throughput on SST-2: dynamic padding + length-grouped batches (`nlp-ssl finetune`) against the
`run_glue.py` defaults (every example padded to max_seq_length 128, random batches), same model, same batch
sizes, same examples, in the same run.

Baseline (what `run_glue.py` does by default): `tokenizer(..., padding="max_length", max_length=128,
truncation=True)`, `default_data_collator`, `Trainer` with its random sampler; evaluation with
`Trainer.predict` over the padded dev set.
Ours: `nlp_ssl.tasks.classification.encode` (no padding), `PadCollator` (pads each batch to its longest),
`train_sampling_strategy="group_by_length"`, and `nlp_ssl.tasks.inference.predict` (length-sorted batches).

Training examples/s: the Trainer's own figure over a fixed number of steps (identical for both), timed around
`trainer.train()` only; evaluation examples/s: the median of 3 passes over SST-2 dev (872 sentences), timed around
the prediction only (the baseline's `Trainer` for `predict` is built before the timer). Tokenisation, padding and
the token statistics are computed once, before any timer. Every method is measured `--repeats` times,
interleaved (all methods, then all again); ratios are the median over repeats of (method / run_glue in the same
repeat) with the range (min-max). Both models start from the same weights; accuracies after the steps are printed
as a sanity check, not as a result.

Usage:
    python benchmarks/bench_finetune.py --quick       # end-to-end check (tiny, 4 steps, 64 dev sentences)
    python benchmarks/bench_finetune.py [--encoder runs/pretrain/bert-tiny-imdb-cpu] [--presets tiny,mini] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from harness import CACHE, DATA_DIR, bench_tokenizer, interleaved, median, ratio, save_results


def make_encoder(preset: str, tokenizer_dir: str, out: str) -> str:
    import torch

    from nlp_ssl.modeling import ModelConfig, build_mlm_model
    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    build_mlm_model(ModelConfig(preset=preset), tok).save_pretrained(out)
    tok.save_pretrained(out)
    return out


METHODS = ("run_glue defaults (pad to 128)", "nlp-ssl, group_by_length false (dynamic padding only)",
           "nlp-ssl (dynamic padding, length-grouped)")


def run(encoder: str, steps: int, batch: int, eval_batch: int, repeats: int, dev_examples: int | None) -> list[list]:
    import torch
    from transformers import AutoModelForSequenceClassification, Trainer, default_data_collator

    from nlp_ssl.config import from_dict
    from nlp_ssl.data.sources import column
    from nlp_ssl.optimization import FinetuneTrainConfig, ImplConfig, training_arguments
    from nlp_ssl.tasks.inference import PadCollator, predict
    from nlp_ssl.tasks.models import build_task_model
    from nlp_ssl.tasks.train import train
    from nlp_ssl.tasks.classification import TaskConfig, encode, load_task, resolve_task
    from nlp_ssl.tokenization import load_tokenizer

    task = resolve_task(from_dict(TaskConfig, {"preset": "sst2", "max_length": 128}))
    splits, _ = load_task(task, str(DATA_DIR))
    tok = load_tokenizer(encoder)
    n_train = steps * batch
    train_raw = splits["train"].shuffle(seed=0).select(range(n_train))
    dev_raw = splits["dev"].select(range(min(dev_examples or len(splits["dev"]), len(splits["dev"]))))

    def padded(ds):
        enc = ds.map(lambda b: tok(b["text_a"], padding="max_length", max_length=128, truncation=True), batched=True)
        return enc.rename_column("label", "labels").select_columns(["input_ids", "token_type_ids", "attention_mask", "labels"])

    # data preparation and its statistics happen once, before and outside every timer
    data = {name: (encode(train_raw, tok, task), encode(dev_raw, tok, task)) if name.startswith("nlp-ssl")
            else (padded(train_raw), padded(dev_raw)) for name in METHODS}
    mean_tokens = {name: float(np.mean([sum(m) for m in column(tr, "attention_mask")])) for name, (tr, _) in data.items()}

    def measure(name: str):
        def once() -> dict:
            ours = name.startswith("nlp-ssl")
            train_set, dev_set = data[name]
            torch.manual_seed(0)
            model = build_task_model(AutoModelForSequenceClassification, encoder, "pretrained", 1, 0.1, num_labels=2)
            with tempfile.TemporaryDirectory() as tmp:
                cfg = FinetuneTrainConfig(learning_rate=[1e-3], per_device_train_batch_size=batch,
                                          per_device_eval_batch_size=eval_batch, max_steps=steps, logging_steps=10**6,
                                          report_to=["none"], group_by_length=ours and "false" not in name)
                args = training_arguments(tmp, cfg, ImplConfig(), seed=1, learning_rate=1e-3, checkpoints=False,
                                          disable_tqdm=True)
                collator = PadCollator(tok) if ours else default_data_collator
                trainer, stats = train(model, args, train_set, collator, tok)  # timed inside: trainer.train() only
                predictor = None if ours else Trainer(model=trainer.model, args=args, data_collator=collator)
                speeds = []
                for _ in range(3):
                    if ours:
                        out, seconds = predict(trainer.model, dev_set, collator, eval_batch)
                        logits = out["logits"]
                    else:
                        t0 = time.perf_counter()
                        logits = predictor.predict(dev_set).predictions
                        seconds = time.perf_counter() - t0
                    speeds.append(len(dev_set) / seconds)
            acc = float((np.asarray(logits).argmax(-1) == np.asarray(column(dev_set, "labels"))).mean())
            return {"train": stats["train_examples_per_second"], "eval": statistics.median(speeds),
                    "seconds": stats["train_seconds"], "acc": acc}
        return once

    results = interleaved({name: measure(name) for name in METHODS}, repeats,
                          show=lambda m: f"train {m['train']:,.1f} ex/s, eval {m['eval']:,.1f} ex/s")
    base = results[METHODS[0]]

    def series(name: str, key: str) -> list[float]:
        return [m[key] for m in results[name]]

    return [[name, median(series(name, "train")), ratio(series(name, "train"), [m["train"] for m in base]),
             median(series(name, "eval")), ratio(series(name, "eval"), [m["eval"] for m in base]),
             median(series(name, "seconds")), mean_tokens[name], median(series(name, "acc"))] for name in METHODS]


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoder", default=None, help="a pretrained encoder directory (default: a fresh random one per preset)")
    ap.add_argument("--presets", default="tiny,mini")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--eval-batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="measurements per method, interleaved across methods")
    ap.add_argument("--quick", action="store_true", help="end-to-end check in seconds: tiny, 4 steps, 64 dev "
                    "sentences, 1 repeat (numbers are no result; written under runs/bench/quick)")
    args = ap.parse_args(argv)
    from nlp_ssl.runinfo import RunClock

    clock = RunClock()
    dev_examples = None
    if args.quick:
        args.presets, args.steps, args.batch, args.repeats, dev_examples = "tiny", 4, 8, 1, 64
    encoders = [("given", args.encoder)] if args.encoder else []
    if not args.encoder:
        tok_dir = str(bench_tokenizer(8192, args.quick))
        suffix = "-quick" if args.quick else ""
        encoders = [(p, make_encoder(p, tok_dir, str(CACHE / f"encoder-bert-{p}{suffix}"))) for p in args.presets.split(",")]
    headers = ["encoder", "method", "train ex/s", "train vs run_glue", "eval ex/s", "eval vs run_glue", "train s",
               "mean tokens/example (train)", "dev acc"]
    rows = [[label, *row] for label, enc in encoders
            for row in run(enc, args.steps, args.batch, args.eval_batch, args.repeats, dev_examples)]
    title = (f"fine-tuning throughput, SST-2, BERT {args.presets if not args.encoder else args.encoder}, {args.steps} "
             f"steps x batch {args.batch} (eval batch {args.eval_batch}); {args.repeats} interleaved repeat(s), "
             "medians, ratio = median (min-max) over repeats")
    return save_results("bench_finetune", title, {"throughput": (headers, rows)}, clock, args.quick, args=vars(args))


if __name__ == "__main__":
    main()
