"""Does pretraining pay off? SST-2 dev accuracy of a pretrained encoder vs the same architecture from scratch.

Same fine-tuning recipe for both initialisations (AutoModelForSequenceClassification on the [CLS] token,
AdamW, 10% warm-up, linear decay, batch 32, dynamic padding, sentences up to 64 tokens). Each
initialisation gets its own best learning rate from the grid, chosen on dev with seed 1; then seeds 2 and 3
run at that rate, and the table reports mean and standard deviation over the 3 seeds. Few-label runs sample a
class-balanced subset of SST-2 train with the seed.

This is a measurement harness for the pretraining issue, written with plain `transformers` (the project's
own `nlp-ssl finetune` comes with the fine-tuning issue).

Usage: python benchmarks/bench_payoff.py --encoder runs/pretrain/bert-tiny-cpu [--labels 1000,all]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile

import numpy as np

from common import DATA_DIR, machine, table


def load_sst2(tokenizer, max_length: int = 64):
    from nlp_ssl.data.sources import DataSourceConfig, load_source

    out = {}
    for split in ("train", "dev"):
        ds = load_source(DataSourceConfig(path=f"glue/sst2/{split}.tsv", text_column="sentence"), str(DATA_DIR),
                         ["sentence", "label"])
        out[split] = ds.map(lambda b: tokenizer(b["sentence"], truncation=True, max_length=max_length), batched=True,
                            remove_columns=["sentence"])
    return out


def balanced_sample(ds, n: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = np.asarray(ds["label"])
    classes = np.unique(labels)
    per = n // len(classes)
    idx = np.concatenate([rng.choice(np.flatnonzero(labels == c), per, replace=False) for c in classes])
    return ds.select(sorted(idx.tolist()))


def finetune(encoder: str, scratch: bool, train, dev, tokenizer, lr: float, seed: int, epochs: float) -> float:
    import torch
    from transformers import (AutoConfig, AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    torch.manual_seed(seed)
    if scratch:
        model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(encoder, num_labels=2))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(encoder, num_labels=2)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=32, per_device_eval_batch_size=128,
                                 learning_rate=lr, num_train_epochs=epochs, warmup_steps=0.1, weight_decay=0.01,
                                 save_strategy="no", eval_strategy="no", report_to=[], seed=seed, use_cpu=True,
                                 disable_tqdm=True, logging_steps=10**6)
        trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer))
        trainer.train()
        pred = trainer.predict(dev)
    return float((pred.predictions.argmax(-1) == pred.label_ids).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--labels", default="1000,all")
    ap.add_argument("--lrs", default="1e-4,3e-4,1e-3")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--epochs-few", type=float, default=10)
    ap.add_argument("--epochs-full", type=float, default=1)
    args = ap.parse_args()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.encoder)
    data = load_sst2(tokenizer)
    lrs = [float(x) for x in args.lrs.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows, raw = [], {}
    for labels in args.labels.split(","):
        epochs = args.epochs_full if labels == "all" else args.epochs_few
        for init in ("scratch", "pretrained"):
            scratch = init == "scratch"

            def train_set(seed):
                return data["train"] if labels == "all" else balanced_sample(data["train"], int(labels), seed)

            grid = {lr: finetune(args.encoder, scratch, train_set(seeds[0]), data["dev"], tokenizer, lr, seeds[0], epochs)
                    for lr in lrs}
            best = max(grid, key=grid.get)
            accs = [grid[best]] + [finetune(args.encoder, scratch, train_set(s), data["dev"], tokenizer, best, s, epochs)
                                   for s in seeds[1:]]
            raw[f"{labels}/{init}"] = {"grid_seed1": grid, "best_lr": best, "accs": accs}
            rows.append([labels, init, f"{best:g}", " ".join(f"{grid[lr]:.3f}" for lr in lrs),
                         f"{100 * statistics.mean(accs):.1f}", f"{100 * statistics.pstdev(accs):.1f}",
                         " ".join(f"{a:.3f}" for a in accs)])
            print(rows[-1], flush=True)
    print(f"\nSST-2 dev accuracy, encoder {args.encoder}, lr grid {args.lrs} (seed {seeds[0]}), seeds {args.seeds}, "
          f"{args.epochs_few:g} epochs few-label / {args.epochs_full:g} full; {machine()}")
    print(table(["labels", "init", "best lr", "dev acc per lr (seed 1)", "mean %", "std %", "per seed"], rows))
    print(json.dumps(raw))


if __name__ == "__main__":
    main()
