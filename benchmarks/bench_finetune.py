"""Fine-tuning throughput on SST-2: dynamic padding + length-grouped batches (`nlp-ssl finetune`) against the
`run_glue.py` defaults (every example padded to max_seq_length 128, random batches), same model, same batch
sizes, same examples, in the same run.

Baseline (what `run_glue.py` does by default): `tokenizer(..., padding="max_length", max_length=128,
truncation=True)`, `default_data_collator`, `Trainer` with its random sampler; evaluation with
`Trainer.predict` over the padded dev set.
Ours: `nlp_ssl.tasks.classification.encode` (no padding), `PadCollator` (pads each batch to its longest),
`train_sampling_strategy="group_by_length"`, and `nlp_ssl.finetuning.predict` (length-sorted batches).

Training examples/s: the Trainer's own figure over a fixed number of steps (identical for both);
evaluation examples/s: the median of 3 passes over SST-2 dev (872 sentences). Both models start from the same
weights; accuracies after the steps are printed as a sanity check, not as a result.

Usage: python benchmarks/bench_finetune.py [--encoder runs/pretrain/bert-tiny-imdb-cpu] [--presets tiny,mini]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from common import DATA_DIR, RESULTS, bench_tokenizer, machine, table


def make_encoder(preset: str, tokenizer_dir: str, out: str) -> str:
    import torch

    from nlp_ssl.modeling import ModelConfig, build_mlm_model
    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    build_mlm_model(ModelConfig(preset=preset), tok).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def run(encoder: str, steps: int, batch: int, eval_batch: int) -> list[list]:
    import torch
    from transformers import AutoModelForSequenceClassification, Trainer, default_data_collator

    from nlp_ssl.config import from_dict
    from nlp_ssl.data.sources import column
    from nlp_ssl.finetuning import FinetuneTrainConfig, PadCollator, build_task_model, predict, train, training_arguments
    from nlp_ssl.tasks.classification import TaskConfig, encode, load_task, resolve_task
    from nlp_ssl.tokenization import load_tokenizer

    task = resolve_task(from_dict(TaskConfig, {"preset": "sst2", "max_length": 128}))
    splits, _ = load_task(task, str(DATA_DIR))
    tok = load_tokenizer(encoder)
    n_train = steps * batch
    train_raw = splits["train"].shuffle(seed=0).select(range(n_train))
    dev_raw = splits["dev"]

    def padded(ds):
        enc = ds.map(lambda b: tok(b["text_a"], padding="max_length", max_length=128, truncation=True), batched=True)
        return enc.rename_column("label", "labels").select_columns(["input_ids", "token_type_ids", "attention_mask", "labels"])

    cfg = FinetuneTrainConfig(learning_rates=[1e-3], per_device_batch_size=batch, eval_batch_size=eval_batch,
                              max_steps=steps, logging_steps=10**6)
    rows = []
    for name in ("run_glue defaults (pad to 128)", "nlp-ssl, group_by_length false (dynamic padding only)",
                 "nlp-ssl (dynamic padding, length-grouped)"):
        ours = name.startswith("nlp-ssl")
        train_set = encode(train_raw, tok, task) if ours else padded(train_raw)
        dev_set = encode(dev_raw, tok, task) if ours else padded(dev_raw)
        model = build_task_model(AutoModelForSequenceClassification, encoder, "pretrained", 1, 0.1, num_labels=2)
        with tempfile.TemporaryDirectory() as tmp:
            cfg.group_by_length = ours and "false" not in name
            args = training_arguments(tmp, cfg, 1e-3, 1, disable_tqdm=True)
            collator = PadCollator(tok) if ours else default_data_collator
            trainer, stats = train(model, args, train_set, collator, tok)
            speeds = []
            for _ in range(3):
                if ours:
                    out, seconds = predict(trainer.model, dev_set, collator, eval_batch)
                    logits = out["logits"]
                else:
                    t0 = time.perf_counter()
                    logits = Trainer(model=trainer.model, args=args, data_collator=collator).predict(dev_set).predictions
                    seconds = time.perf_counter() - t0
                speeds.append(len(dev_set) / seconds)
        acc = float((np.asarray(logits).argmax(-1) == np.asarray(column(dev_set, "labels"))).mean())
        tokens = np.asarray(column(train_set, "attention_mask"), dtype=object)
        real = sum(sum(m) for m in tokens) / len(tokens)
        rows.append([name, stats["train_examples_per_second"], statistics.median(speeds), stats["train_seconds"],
                     real, acc])
        print(rows[-1], flush=True)
        torch.manual_seed(0)
    base_train, base_eval = rows[0][1], rows[0][2]
    for row in rows:
        row[3:3] = [f"{row[2] / base_eval:.2f}x"]
        row[2:2] = [f"{row[1] / base_train:.2f}x"]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoder", default=None, help="a pretrained encoder directory (default: a fresh random one per preset)")
    ap.add_argument("--presets", default="tiny,mini")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--eval-batch", type=int, default=128)
    args = ap.parse_args()

    RESULTS.mkdir(parents=True, exist_ok=True)
    encoders = [("given", args.encoder)] if args.encoder else []
    if not args.encoder:
        tok_dir = str(bench_tokenizer(8192))
        encoders = [(p, make_encoder(p, tok_dir, str(RESULTS / f"encoder-bert-{p}"))) for p in args.presets.split(",")]
    lines = []
    for label, enc in encoders:
        rows = run(enc, args.steps, args.batch, args.eval_batch)
        lines.append(f"\nSST-2, BERT {label} ({enc}), {args.steps} steps x batch {args.batch} "
                     f"(eval batch {args.eval_batch}); {machine()}")
        lines.append(table(["method", "train ex/s", "train vs run_glue", "eval ex/s", "eval vs run_glue",
                            "train s", "mean tokens/example (train)", "dev acc"], rows))
    text = "\n".join(lines)
    print(text)
    (RESULTS / "bench_finetune.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
