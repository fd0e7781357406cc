"""Quality at equal compute: masked-LM validation loss after the same wall-clock budget, ours vs the reference.

Both train a BERT of the same size on the same packed blocks (Wikipedia shards 00-02, WordPiece 8k, 128 tokens),
batch 64, peak learning rate 1e-3 with 6% warm-up and linear decay, for the same wall-clock budget:
- reference: stock `BertForMaskedLM` (dropout 0.1) + `DataCollatorForLanguageModeling(0.15)` + `Trainer`, with
  run_mlm.py's precomputed `special_tokens_mask` reaching the collator; its step-based schedule is sized to the
  budget from a short throughput probe (30 steps, steady-state steps 10-30), and it is stopped at the deadline
  (the clock starts at `on_train_begin`, after the Trainer is built);
- ours: `nlp-ssl pretrain` with `train.max_time_minutes` (the schedule ends exactly at the deadline).
Both final models are then scored the same way: full-vocabulary cross-entropy and accuracy on the same 2,000
validation blocks, masked once (15%, 80/10/10, fixed seed).

Usage:
    python benchmarks/bench_pretrain_quality.py --quick              # end-to-end check (2 x 0.5 minute)
    python benchmarks/bench_pretrain_quality.py [--minutes 8] [--preset tiny]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from common import DATA_DIR, RESULTS, WIKI, bench_tokenizer, machine, table

BATCH, LR, WARMUP = 64, 1e-3, 0.06


def blocks_3_shards(max_examples: int | None = None) -> Path:
    """Shards 00-02 packed into 128-token blocks (quick: the first `max_examples` articles of shard 00)."""
    from nlp_ssl.cli import run

    out = RESULTS / ("blocks-wiki00-02-wp8192-128" + (f"-first{max_examples}" if max_examples else ""))
    run("prepare", {"output_dir": str(out), "tokenizer": str(bench_tokenizer(8192, max_examples)), "block_size": 128,
                    "data": {"path": WIKI[:1] if max_examples else WIKI[:3], "max_examples": max_examples},
                    "validation_fraction": 0.02, "progress": False}, str(DATA_DIR))
    return out


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


def run_reference(blocks: Path, preset: str, seconds: float, out: str) -> dict:
    import datasets
    import torch
    from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, Trainer,
                              TrainerCallback, TrainingArguments)

    from nlp_ssl.modeling import PRESETS

    from bench_pretrain import with_special_tokens_mask

    report = json.loads((blocks / "prepare_report.json").read_text())
    tok = AutoTokenizer.from_pretrained(report["tokenizer"])
    # run_mlm.py's precomputed special_tokens_mask, kept for the collator (see bench_pretrain.py); before any clock
    train = with_special_tokens_mask(datasets.load_from_disk(str(blocks))["train"], tok)
    L, H, A, I = PRESETS[preset]

    def build():
        torch.manual_seed(0)
        return BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=H, num_hidden_layers=L, num_attention_heads=A,
                                          intermediate_size=I, pad_token_id=tok.pad_token_id))

    class Deadline(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.monotonic()

        def on_step_end(self, args, state, control, **kw):
            if time.monotonic() - self.t0 >= seconds:
                control.should_training_stop = True

    def trainer(max_steps: int, callbacks=()):
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=BATCH, max_steps=max_steps, learning_rate=LR,
                                 warmup_steps=WARMUP, weight_decay=0.01, save_strategy="no", report_to=[],
                                 logging_steps=50, use_cpu=True, disable_tqdm=True, seed=0, remove_unused_columns=False)
        return Trainer(model=build(), args=args, train_dataset=train, callbacks=list(callbacks),
                       data_collator=DataCollatorForLanguageModeling(tok, mlm_probability=0.15))

    class StepClock(TrainerCallback):
        times: list[float] = []

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.monotonic())

    clock = StepClock()
    trainer(30, [clock]).train()
    per_step = (clock.times[-1] - clock.times[9]) / 20  # steady state: the first steps pay one-off costs
    steps = int(seconds / per_step)  # the schedule is sized to end at the deadline
    tr = trainer(steps, [Deadline()])
    t = time.monotonic()
    tr.train()
    took = time.monotonic() - t
    tr.save_model(out)
    return {"steps": tr.state.global_step, "planned_steps": steps, "seconds": took}


def run_ours(blocks: Path, preset: str, seconds: float, out: str) -> dict:
    from nlp_ssl.cli import run

    m = run("pretrain", {
        "output_dir": out, "data": str(blocks), "model": {"arch": "bert", "preset": preset},
        "train": {"per_device_train_batch_size": BATCH, "learning_rate": LR, "warmup_ratio": WARMUP, "max_time_minutes": seconds / 60,
                  "eval_steps": 0, "save_steps": 0, "logging_steps": 50, "max_eval_samples": 64, "report_to": ["none"]}})
    return {"steps": m["steps"], "planned_steps": "by time", "seconds": m["train_runtime_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--eval-blocks", type=int, default=2000)
    ap.add_argument("--quick", action="store_true", help="end-to-end check: 0.5 minute each, 2,000 articles, 200 blocks")
    args = ap.parse_args()
    max_examples = None
    if args.quick:
        args.minutes, args.eval_blocks, max_examples = 0.5, 200, 2000

    import datasets

    from nlp_ssl.objectives.collators import MLMCollator
    from nlp_ssl.objectives.masking import MaskingConfig
    from nlp_ssl.objectives.mlm import masked_eval_set
    from nlp_ssl.tokenization import load_tokenizer

    blocks = blocks_3_shards(max_examples)
    report = json.loads((blocks / "prepare_report.json").read_text())
    tok = load_tokenizer(report["tokenizer"])
    val = datasets.load_from_disk(str(blocks))["validation"]
    eval_set = masked_eval_set(val, MLMCollator.from_tokenizer(tok, MaskingConfig()), args.eval_blocks, seed=1234)
    rows = []
    for name, fn in [("reference (stock BERT, dropout 0.1, dense head)", run_reference), ("nlp-ssl pretrain", run_ours)]:
        with tempfile.TemporaryDirectory() as tmp:
            r = fn(blocks, args.preset, args.minutes * 60, tmp)
            s = score(tmp, eval_set)
        tokens = r["steps"] * BATCH * 128
        rows.append([name, round(r["seconds"], 1), r["steps"], r["planned_steps"], f"{tokens / 1e6:.2f}M",
                     round(s["val_loss"], 3), round(math.exp(s["val_loss"]), 1), f"{s['val_accuracy']:.2%}"])
        print(rows[-1], flush=True)
    print(f"\nquality at equal wall clock ({args.minutes:g} min), BERT {args.preset}, WordPiece 8k, T=128, batch {BATCH}, "
          f"lr {LR}, {len(eval_set)} validation blocks masked once; {machine()}")
    print(table(["recipe", "train s", "steps", "planned", "tokens", "val loss", "val ppl", "val acc"], rows))


if __name__ == "__main__":
    main()
