"""How much of a pretrained-vs-scratch difference is the pretraining run itself: the same pretraining config run
with several seeds under a token budget (the same steps on any machine) and, separately, under a wall-clock
budget (what the run learns depends on the machine's speed and load), each encoder fine-tuned with the same
fine-tuning seeds, beside the same architecture from scratch with those seeds.

Reported per task: mean ± std over pretraining runs (of each run's mean over fine-tuning seeds), mean ± std over
fine-tuning seeds within a run (averaged), and over all runs pooled; a comparison exceeds the spread when its
difference is more than twice the largest of the standard deviations that bear on it (for the pretrained side,
over pretraining runs and over fine-tuning seeds within a run: a run's mean over seeds hides the second; for
scratch, over fine-tuning seeds).

Every command goes through `nlp-ssl` (the pretraining config, then `nlp-ssl finetune` with the same overrides
for every encoder); finished runs are reused, so an interrupted study continues where it stopped. Each run's
metrics.json records its provenance (commit, versions, machine, load average at start and end; for pretraining
its steps and tokens seen), and the tabulated study is written to OUT/spread.json with its own provenance.

Usage:
    python benchmarks/pretrain_spread.py --quick                      # checks it works (~5 min; numbers not results)
    python benchmarks/pretrain_spread.py                              # the study (reduced scale: see --help)
    python benchmarks/pretrain_spread.py --tasks sst2-100,imdb-100 --max-tokens 20480000 --batch 64 --minutes 25
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import DATA_DIR, REPO, table

PRETRAIN_CONFIG = "configs/pretrain/bert-tiny-imdb-tokens-cpu.yaml"
# task name -> (fine-tuning config, overrides): the README's 100-label protocol (30 epochs of batch 16)
TASKS = {
    "sst2-100": ("configs/finetune/sst2-1000-labels-bert-tiny-cpu.yaml",
                 ["max_train_samples=100", "train.num_train_epochs=30", "train.per_device_train_batch_size=16"]),
    "sst2-1000": ("configs/finetune/sst2-1000-labels-bert-tiny-cpu.yaml", []),
    "imdb-100": ("configs/finetune/imdb-bert-tiny-cpu.yaml",
                 ["max_train_samples=100", "train.num_train_epochs=30", "train.per_device_train_batch_size=16"]),
}


def nlp_ssl(*args: str, log, threads: int) -> None:
    """One `nlp-ssl` command in a fresh process (its output appended to the log), with `threads` torch threads
    (fine-tuning has no thread setting: torch's default would follow the core count, and the weights with it)."""
    cmd = [sys.executable, "-m", "nlp_ssl", *args]
    env = {**os.environ, "NLP_SSL_DATA_DIR": str(DATA_DIR), "TQDM_DISABLE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
           "OMP_NUM_THREADS": str(threads)}
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    log.write(f"\n$ {' '.join(cmd[1:])}\n# {time.strftime('%H:%M:%S')} load {load}\n")
    log.flush()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)


def finished_encoder(enc: Path, seed: int, batch: int, run_length: dict, data: str | None = None,
                     tokenizer: str | None = None, threads: int | None = None) -> bool:
    """A complete pretraining run in `enc` with this seed, batch and budget, and (when given) the same corpus,
    tokenizer and threads (so `nlp-ssl pretrain`, which would load the corpus only to say so, need not start; an
    encoder of other data is not taken for this study's)."""
    from nlp_ssl.atomic import is_complete
    from nlp_ssl.config import read_yaml

    if not (enc / "metrics.json").exists() or not is_complete(enc):
        return False
    train = read_yaml(enc / "config.yaml").get("train") or {}
    recorded = json.loads((enc / "metrics.json").read_text()).get("provenance", {}).get("run_length")
    config = read_yaml(enc / "config.yaml")

    def same_path(key: str, want: str | None) -> bool:
        return want is None or (REPO / str(config.get(key))).resolve() == (REPO / want).resolve()

    return (train.get("seed") == seed and train.get("per_device_train_batch_size", train.get("per_device_batch_size")) == batch
            and recorded == run_length and same_path("data", data) and same_path("tokenizer", tokenizer)
            and (threads is None or (config.get("impl") or {}).get("num_threads") == threads))


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def report_scores(metrics: dict) -> list[float]:
    """Per fine-tuning seed, the reported split's headline metric (%)."""
    split, metric = metrics["report_split"], metrics["selection"]["metric"]
    return [100 * r["eval"][split][metric] for r in metrics["runs"]]


def summarize(encoders: dict[str, dict], scores: dict[str, dict[str, list[float]]]) -> dict:
    """{task: {"scratch": {...}, budget: {...}}}: the spread over pretraining runs and over fine-tuning seeds,
    and whether pretrained vs scratch (and token vs time budget) exceed it."""
    out: dict = {}
    for task, by_run in scores.items():
        scratch = by_run["scratch"]
        s_mean, s_std = mean_std(scratch)
        t = {"scratch": {"per_seed": scratch, "mean": s_mean, "std_over_finetune_seeds": s_std}}
        for budget in ("tokens", "time"):
            runs = {name: v for name, v in by_run.items() if encoders.get(name, {}).get("budget") == budget}
            if not runs:
                continue
            run_means = [statistics.fmean(v) for v in runs.values()]
            m, sd_pre = mean_std(run_means)
            pooled = [x for v in runs.values() for x in v]
            within = statistics.fmean(mean_std(v)[1] for v in runs.values())
            diff = m - s_mean
            bar = 2 * max(sd_pre, within, s_std)  # a pretrained figure varies with its fine-tuning seed too
            t[budget] = {"runs": {name: {"per_seed": v, "mean": statistics.fmean(v)} for name, v in runs.items()},
                         "mean": m, "std_over_pretraining_runs": sd_pre, "std_over_finetune_seeds_within_run": within,
                         "pooled_mean": statistics.fmean(pooled), "pooled_std": mean_std(pooled)[1],
                         "minus_scratch": diff, "exceeds_spread": abs(diff) > bar, "spread_bar": bar}
        if "tokens" in t and "time" in t:
            d = t["tokens"]["mean"] - t["time"]["mean"]
            bar = 2 * max(t[b][k] for b in ("tokens", "time")
                          for k in ("std_over_pretraining_runs", "std_over_finetune_seeds_within_run"))
            t["tokens_minus_time"] = {"difference": d, "exceeds_spread": abs(d) > bar, "spread_bar": bar}
        out[task] = t
    return out


def print_tables(encoders: dict[str, dict], summary: dict) -> None:
    rows = [[name, e["budget"], e["seed"], e["steps"], f"{e['tokens_seen'] / 1e6:.2f}M", f"{e['eval_loss']:.3f}",
             f"{e['minutes']:.1f}", " / ".join(f"{x:.1f}" for x in e["load_start"][:1] + e["load_end"][:1])]
            for name, e in encoders.items()]
    print(table(["encoder", "budget", "seed", "steps", "tokens", "val MLM loss", "train min", "load 1-min start / end"],
                rows))
    rows = []
    for task, t in summary.items():
        rows.append([task, "scratch", f"{t['scratch']['mean']:.1f}", "-", f"{t['scratch']['std_over_finetune_seeds']:.1f}",
                     " ".join(f"{x:.1f}" for x in t["scratch"]["per_seed"]), "-", "-"])
        for budget in ("tokens", "time"):
            if budget not in t:
                continue
            b = t[budget]
            rows.append([task, f"pretrained ({budget} budget)", f"{b['mean']:.1f}", f"{b['std_over_pretraining_runs']:.1f}",
                         f"{b['std_over_finetune_seeds_within_run']:.1f}",
                         " | ".join(" ".join(f"{x:.1f}" for x in r["per_seed"]) for r in b["runs"].values()),
                         f"{b['minus_scratch']:+.1f}", f"{'yes' if b['exceeds_spread'] else 'no'} (bar {b['spread_bar']:.1f})"])
        if "tokens_minus_time" in t:
            d = t["tokens_minus_time"]
            rows.append([task, "token minus time budget", f"{d['difference']:+.1f}", "-", "-", "-", "-",
                         f"{'yes' if d['exceeds_spread'] else 'no'} (bar {d['spread_bar']:.1f})"])
    print()
    print(table(["task", "init", "mean (%)", "std over pretraining runs", "std over ft seeds (within a run)",
                 "per fine-tuning seed, per pretraining run", "minus scratch", "exceeds spread"], rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=PRETRAIN_CONFIG, help="pretraining config (its budget is replaced)")
    p.add_argument("--data", default="runs/data/imdb-unsup-wp8k-128", help="prepared blocks (configs/prepare/imdb-unsup-128.yaml)")
    p.add_argument("--tokenizer", default="runs/tokenizers/wordpiece-wiki-8k")
    p.add_argument("--batch", type=int, default=16, help="pretraining blocks per step")
    p.add_argument("--max-tokens", type=int, default=600 * 16 * 128, help="token budget (default: 600 steps of 16 x 128)")
    p.add_argument("--minutes", type=float, default=4.0, help="wall-clock budget of the time-budget runs")
    p.add_argument("--pretrain-seeds", default="1,2,3")
    p.add_argument("--finetune-seeds", default="1,2,3")
    p.add_argument("--tasks", default="sst2-100", help=f"comma-separated, of {sorted(TASKS)}")
    p.add_argument("--lr-pretrained", type=float, default=1e-3,
                   help="fine-tuning rate of pretrained encoders (default: scratch's; 1e-4 left these short-pretrained "
                        "encoders at chance on SST-2 after 210 steps)")
    p.add_argument("--lr-scratch", type=float, default=1e-3, help="fine-tuning rate from scratch")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run, pretraining and fine-tuning (impl.num_threads, OMP_NUM_THREADS; on a shared machine 1: more oversubscribes the cores and runs several times slower)")
    p.add_argument("--budgets", default="tokens,time", help="tokens, time or both")
    p.add_argument("--out", default="runs/spread")
    p.add_argument("--quick", action="store_true", help="tiny budgets and one seed each: checks it works")
    p.add_argument("--tabulate-only", action="store_true",
                   help="run nothing: tabulate the finished runs under --out (each run's metrics.json)")
    args = p.parse_args()
    if args.quick:
        args.max_tokens, args.minutes, args.batch = 20 * 8 * 128, 0.3, 8
        args.pretrain_seeds, args.finetune_seeds, args.out = "1,2", "1,2", args.out + "-quick"
    quick_ft = ["max_train_samples=40", "train.num_train_epochs=1"] if args.quick else []
    sys.path.insert(0, str(REPO))
    from nlp_ssl.runinfo import RunClock

    clock = RunClock()
    out = (REPO / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pre_seeds = [int(s) for s in args.pretrain_seeds.split(",")]
    ft_seeds = f"[{args.finetune_seeds}]"
    budgets = args.budgets.split(",")
    common = [f"data={args.data}", f"tokenizer={args.tokenizer}", f"train.per_device_train_batch_size={args.batch}",
              f"impl.num_threads={args.threads}", "train.report_to=[none]", "train.eval_steps=0", "train.save_steps=0",
              "train.max_eval_samples=500", "train.max_steps=-1", "train.num_train_epochs=null"]
    budget_keys = {"tokens": [f"train.max_tokens={args.max_tokens}", "train.max_time_minutes=null"],
                   "time": ["train.max_tokens=null", f"train.max_time_minutes={args.minutes}"]}
    with open(out / "log.txt", "a") as log:
        encoders: dict[str, dict] = {}
        for budget in budgets:  # the pretraining runs, one at a time
            for seed in pre_seeds:
                name = f"{budget}-seed{seed}"
                enc = out / "pretrain" / name
                run_length = ({"unit": "max_tokens", "value": args.max_tokens, "machine_speed_dependent": False}
                              if budget == "tokens" else
                              {"unit": "max_time_minutes", "value": args.minutes, "machine_speed_dependent": True})
                if not args.tabulate_only and not finished_encoder(enc, seed, args.batch, run_length, args.data,
                                                                       args.tokenizer, args.threads):
                    nlp_ssl("pretrain", args.config, f"output_dir={enc}", f"train.seed={seed}", *common,
                            *budget_keys[budget], log=log, threads=args.threads)
                m = json.loads((enc / "metrics.json").read_text())
                prov = m.get("provenance", {}).get("machine", {})
                encoders[name] = {"dir": str(enc), "budget": budget, "seed": seed, "steps": m["steps"],
                                  "tokens_seen": m["tokens_seen"], "eval_loss": m.get("eval_loss", float("nan")),
                                  "minutes": m["train_runtime_s"] / 60,
                                  "load_start": prov.get("load_average_start") or [float("nan")],
                                  "load_end": prov.get("load_average_end") or [float("nan")]}
        scores: dict[str, dict[str, list[float]]] = {}
        # scratch: the architecture and tokenizer of an encoder, its weights drawn from the fine-tuning seed; the
        # same directory whichever budgets this invocation runs (so its finished runs are reused)
        first = out / "pretrain" / f"tokens-seed{pre_seeds[0]}"
        any_encoder = str(first) if (first / "metrics.json").exists() else next(iter(encoders.values()))["dir"]
        for task in args.tasks.split(","):
            config, overrides = TASKS[task]
            runs = {"scratch": (any_encoder, "scratch", args.lr_scratch)}  # weights drawn from the seed alone
            runs.update({name: (e["dir"], "pretrained", args.lr_pretrained) for name, e in encoders.items()})
            scores[task] = {}
            for name, (enc, init, lr) in runs.items():
                ft = out / "finetune" / task / (name if name == "scratch" else f"{name}-lr{lr:g}")
                if not args.tabulate_only:
                    nlp_ssl("finetune", config, f"model={enc}", f"init={init}", f"output_dir={ft}", f"seed={ft_seeds}",
                            f"train.learning_rate=[{lr}]", "save_predictions=false", *overrides, *quick_ft, log=log, threads=args.threads)
                scores[task][name] = report_scores(json.loads((ft / "metrics.json").read_text()))
    summary = summarize(encoders, scores)
    result = {"args": vars(args), "encoders": encoders, "tasks": summary, "provenance": clock.provenance(),
              "command": " ".join(["python", *sys.argv])}
    (out / "spread.json").write_text(json.dumps(result, indent=2) + "\n")
    print_tables(encoders, summary)
    print(f"\nwritten to {out / 'spread.json'} (log: {out / 'log.txt'})")


if __name__ == "__main__":
    main()
