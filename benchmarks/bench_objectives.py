"""Pretext tasks at equal wall clock: each objective pretrains the same architecture on the same tokenizer and
text for the same budget, through `nlp-ssl pretrain`, and the resulting encoders are compared the same way.

Variants (`--variants`, comma-separated):
    mlm        masked LM (15%, 80/10/10), sparse head                      -- the baseline
    clm        next-token LM (causal attention; its encoder keeps is_decoder, so its [CLS] state attends to [CLS]
               alone: no SST-2 fine-tune and no [CLS] STS figure for it, which would score a constant
               vector at chance rather than the encoder; its STS figure is the mean-pooled one)
    electra    replaced-token detection: generator 1/4 wide, lambda 50    (encoder = discriminator)
    mlm_docs   masked LM on the document-layout blocks mlm_sop trains on (its control: those blocks hold one
               document each, padded, so they carry fewer real tokens than stream blocks; compare mlm_sop with
               mlm_docs for the effect of the order loss, and mlm_docs with mlm for the effect of the layout)
    mlm_sop    masked LM + sentence-order prediction, on document-layout blocks of the same text
    simcse     unsupervised SimCSE for the same budget, starting from the mlm encoder (a second stage: its total
               compute is twice the others'; compare it with mlm, which it starts from)

Every run: same preset, block size, batch, peak learning rate (warm-up 6%, linear decay to the deadline), seed.
Recorded per run: optimizer steps, input tokens/s (global batch x block size per step; for simcse the sentences
are cut to 64 tokens and encoded twice, so compare its steps, not its tokens), the objective's own validation
figures (masked-token accuracy, replaced-token accuracy, sentence-order accuracy, loss), and two probes that
every encoder gets alike: STS-B dev zero-shot Spearman (cosine of [CLS] and of mean-pooled vectors), and, with
`--sst2-steps N`, SST-2 dev accuracy after N fine-tuning steps (settings in FINETUNE: lr 1e-3, layer-wise decay
0.8, batch 32, max length 64).

Usage:
    python benchmarks/bench_objectives.py --minutes 0.2 --docs 300 --eval-blocks 100 --sst2-steps 5   # smoke, ~11 min
    python benchmarks/bench_objectives.py --minutes 20 --sst2-steps 600        # the comparison, ~2.5 h on 2 CPUs
    python benchmarks/bench_objectives.py --minutes 20 --preset mini --bf16             # on a GPU machine
Results: benchmarks/results/objectives-<preset>-<minutes>min.json and a printed table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import DATA_DIR, RESULTS, WIKI, bench_tokenizer, machine, table

def run_command(command: str, config: dict):
    """Run an `nlp-ssl` command on a config mapping, through the CLI's command table (no recipe import)."""
    from nlp_ssl.cli import run

    return run(command, config, str(DATA_DIR))


VARIANTS = ("mlm", "clm", "electra", "mlm_docs", "mlm_sop", "simcse")
OBJECTIVES = {
    "mlm": {"task": "mlm"},
    "clm": {"task": "clm"},
    "electra": {"task": "electra", "electra": {"generator_width": 0.25, "loss_weight": 50.0}},
    "mlm_docs": {"task": "mlm"},
    "mlm_sop": {"task": "mlm", "sentence_order": True},
    "simcse": {"task": "simcse", "simcse": {"max_length": 64, "pooling": "cls_mlp", "temperature": 0.05}},
}
CAUSAL_VARIANTS = {"clm"}  # encoders whose [CLS] attends to nothing else: no [CLS] probes
DOCUMENT_VARIANTS = {"mlm_docs", "mlm_sop"}  # trained on `layout: documents` blocks
FINETUNE = {"learning_rate": [1e-3], "per_device_train_batch_size": 32, "layer_lr_decay": 0.8, "warmup_ratio": 0.1,
            "logging_steps": 1000}


def prepare(tokenizer: Path, layout: str, block_size: int, docs: int | None) -> Path:
    out = RESULTS / f"blocks-wiki00-{layout}-{block_size}-{docs or 'all'}"
    data = {"path": WIKI[0], **({"max_examples": docs} if docs else {})}
    run_command("prepare", {"output_dir": str(out), "tokenizer": str(tokenizer), "block_size": block_size,
                            "data": data, "validation_fraction": 0.02, "progress": False, "layout": layout})
    return out


def pretrain(name: str, blocks: Path, out: Path, args, init_from: str | None = None) -> dict:
    model = {"arch": "bert", "preset": args.preset, "sparse_prediction": name != "clm", "init_from": init_from}
    config = {
        "output_dir": str(out), "data": str(blocks), "model": model, "objective": OBJECTIVES[name],
        "train": {"per_device_train_batch_size": args.batch, "learning_rate": args.lr, "warmup_ratio": 0.06,
                  "max_time_minutes": args.minutes, "eval_steps": 0, "save_steps": 0, "max_eval_samples": args.eval_blocks,
                  "logging_steps": 10, "report_to": ["none"], "seed": 0, "bf16": args.bf16},
        "overwrite": True}
    t0 = time.perf_counter()
    metrics = run_command("pretrain", config)
    metrics["wall_seconds"] = time.perf_counter() - t0
    return metrics


def sts(model_dir: Path) -> dict:
    from nlp_ssl.tasks.sts import evaluate_sts_zero_shot

    return {p: evaluate_sts_zero_shot(str(model_dir), {"type": "sts_zero_shot", "pooling": p}, str(DATA_DIR),
                                      ["dev"])["eval"]["dev"]["spearmanr"] for p in ("cls", "mean")}


def sst2(model_dir: Path, out: Path, steps: int) -> float:
    return run_command("finetune", {"output_dir": str(out), "model": str(model_dir), "overwrite": True,
                                    "save_predictions": False, "task": {"preset": "sst2", "max_length": 64},
                                    "train": {**FINETUNE, "max_steps": steps}})["eval"]["dev"]["accuracy"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=20.0, help="pretraining wall clock per variant")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--preset", default="tiny")
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--docs", type=int, default=None, help="use only the first N articles of shard 00 (smoke runs)")
    p.add_argument("--eval-blocks", type=int, default=1000)
    p.add_argument("--sst2-steps", type=int, default=0, help="SST-2 fine-tuning steps per encoder (0: skip)")
    p.add_argument("--bf16", action="store_true")
    args = p.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    if "simcse" in variants and "mlm" not in variants:
        p.error("simcse starts from the mlm encoder: add mlm to --variants")

    tok = bench_tokenizer(args.vocab)
    blocks = {"stream": prepare(tok, "stream", args.block_size, args.docs)}
    if DOCUMENT_VARIANTS & set(variants):
        blocks["documents"] = prepare(tok, "documents", args.block_size, args.docs)
    work = RESULTS / f"objectives-{args.preset}-{args.minutes:g}min"
    results: dict[str, dict] = {}
    for name in variants:  # mlm before simcse (VARIANTS order when given in that order)
        out = work / name
        init = str(work / "mlm") if name == "simcse" else None
        m = pretrain(name, blocks["documents" if name in DOCUMENT_VARIANTS else "stream"], out, args, init)
        row = {"steps": m["steps"], "tokens_per_second": m.get("tokens_per_second_mean"), "wall_seconds": m["wall_seconds"],
               "eval": {k: v for k, v in m.items() if k.startswith("eval_") and isinstance(v, (int, float))}}
        row["sts_zero_shot"] = sts(out)
        if name in CAUSAL_VARIANTS:
            row["sts_zero_shot"]["cls"] = None  # [CLS] sees only itself under causal attention
        if args.sst2_steps:
            row["sst2_dev_accuracy"] = (None if name in CAUSAL_VARIANTS  # the classifier reads that [CLS]
                                        else sst2(out, work / f"{name}-sst2", args.sst2_steps))
        results[name] = row
        print(f"{name}: {json.dumps(row)}", flush=True)

    report = {"machine": machine(), "args": vars(args), "results": results}
    path = RESULTS / f"objectives-{args.preset}-{args.minutes:g}min.json"
    path.write_text(json.dumps(report, indent=2) + "\n")

    def f4(v):
        return f"{v:.4f}" if isinstance(v, float) else "-"

    def fig(row, key):
        return f4(row["eval"].get(key))

    headers = ["variant", "steps", "tokens/s", "eval loss", "MLM acc", "RTD acc", "SOP acc", "STS cls", "STS mean"]
    if args.sst2_steps:
        headers.append("SST-2 acc")
    rows = []
    for name, r in results.items():
        row = [name, r["steps"], round(r["tokens_per_second"] or 0.0, 1), fig(r, "eval_loss"), fig(r, "eval_mlm_accuracy"),
               fig(r, "eval_rtd_accuracy"), fig(r, "eval_sentence_order_accuracy"),
               f4(r["sts_zero_shot"]["cls"]), f4(r["sts_zero_shot"]["mean"])]  # clm: None -> "-"
        if args.sst2_steps:
            row.append(f4(r["sst2_dev_accuracy"]))
        rows.append(row)
    print(f"\n{args.preset}, {args.minutes:g} min per variant, block {args.block_size}, batch {args.batch}, "
          f"lr {args.lr:g}; {machine()}")
    print(table(headers, rows))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
