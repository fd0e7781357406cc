"""Figures from finished runs: every run directory under a study's folder, read through `nlp_ssl.layout`, becomes
rows of a few tables, and runs named `TASK-scratch` are paired with every `TASK-ENCODER` run beside them.

Tables (each only when it has rows):
- pretraining: steps, tokens seen, tokens/s and the objective's own validation figures of each pretraining run;
- classification: a grid's report-split headline metric (classification, regression, QA), mean ± std over
  seeds, the learning rate chosen on the selection split and the grid (marked `oracle` when that split is the
  reported one); a run of one rate and one seed shows its one figure;
- self_training: the metric per round; qa: EM/F1 and features/s (a one-seed QA run);
- zero_shot: Spearman and Pearson of `nlp-ssl evaluate MODEL task.type=sts_zero_shot output_dir=DIR`;
- pairs: TASK-scratch against each TASK-ENCODER (the longest matching TASK wins: sst2-1000-x is sst2-1000's):
  the difference of the means and whether it exceeds twice the larger of the two standard deviations over seeds
  (a side with one seed gives no spread and none is claimed). Self-training runs are a method, not an encoder,
  and are not paired. A run named like a pair whose metric, seeds or training examples differ is refused: the
  tables still come out, and the refusal names it.

`spread` summarises a study of several pretraining runs (see `payoff.py spread`).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

Tables = dict[str, tuple[list[str], list[list]]]

HEADERS = {
    "pretraining": ["run", "steps", "tokens seen", "tokens/s", "minutes", "validation"],
    "classification": ["run", "init", "labels", "metric", "mean ± std (%)", "per seed", "best lr",
                       "grid (seed 1, selection split)"],
    "self_training": ["run", "round", "pseudo-labels per seed", "accuracy mean ± std (%)"],
    "qa": ["run", "init", "split", "EM", "F1", "steps", "train windows", "train windows/s", "eval windows/s"],
    "zero_shot": ["run", "model", "pooling", "split", "Spearman", "Pearson"],
    "pairs": ["task", "encoder", "metric", "scratch", "encoder's", "difference", "beyond 2 x the larger std?"],
}


def finished_runs(root: str | Path) -> list:
    """The finished runs directly under `root` (`nlp_ssl.layout.FinishedRun`), by name."""
    from nlp_ssl.layout import is_run, read_run

    root = Path(root)
    return [read_run(p) for p in sorted(root.iterdir()) if p.is_dir() and is_run(p)] if root.is_dir() else []


def tabulate(root: str | Path) -> tuple[Tables, list[str], dict[str, dict]]:
    """(tables, refusals, {run: its provenance and init}) for the finished runs under `root`."""
    from nlp_ssl.tasks.registry import spec_for_run

    rows: dict[str, list[list]] = {k: [] for k in HEADERS}
    # run name -> (what, mean %, std % or None when fewer than 2 seeds, what must match for a fair pair)
    means: dict[str, tuple[str, float, float | None, tuple]] = {}
    methods: set[str] = set()  # runs that are a method (self-training), not an encoder: never paired
    runs: dict[str, dict] = {}
    for run in finished_runs(root):
        m, name = run.metrics, run.name
        runs[name] = {"provenance": m.get("provenance"), "init": m.get("init")}
        if run.kind == "pretrain":
            evals = ", ".join(f"{k[5:]} {v:.4g}" for k, v in m.items() if k.startswith("eval_") and isinstance(v, float)
                              and not k.endswith(("runtime", "per_second")))
            tps = m.get("tokens_per_second_mean")
            rows["pretraining"].append([name, m.get("steps"), m.get("tokens_seen"), None if tps is None else round(tps),
                                        round(m.get("train_runtime_s", 0) / 60, 1), evals or "-"])
        elif "summary" in m:  # a grid over rates x seeds (classification, regression, QA)
            split, metric = m["report_split"], m["selection"]["metric"]
            s = m["summary"][split][metric]
            x = 1 if spec_for_run(m, run.task).report.kind == "qa" else 100  # SQuAD scores are in points already
            means[name] = (f"{split} {metric}", x * s["mean"], x * s["std"] if s.get("n", 2) >= 2 else None,
                           (tuple(m.get("seeds") or ()), m.get("max_train_samples")))
            grid = " ".join(f"{lr}:{x * v:.1f}" for lr, v in m["selection"]["grid"].items())
            rows["classification"].append([
                name, m["init"], m["max_train_samples"] or "all", f"{split} {metric}",
                f"{x * s['mean']:.1f} ± {x * s['std']:.1f}",
                " ".join(f"{x * r['eval'][split][metric]:.1f}" for r in m["runs"]),
                f"{m['selection']['best_learning_rate']:g}" + (" (oracle)" if m["selection"].get("oracle") else ""), grid])
            if m.get("self_training_rounds"):
                methods.add(name)
            for rnd in m.get("self_training_rounds", []):
                r = rnd["summary"][split][metric]
                rows["self_training"].append([name, rnd["round"], " ".join(map(str, rnd["pseudo_labels"])),
                                              f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}"])
        elif "train_features" in m:  # extractive QA, one seed
            for split, e in m["eval"].items():
                em = e.get("exact_match", e.get("exact"))
                if split == m.get("report_split", split):
                    means[name] = (f"{split} F1", e["f1"], None, (m.get("seed"), m.get("max_train_samples")))
                rows["qa"].append([name, m["init"], split, f"{em:.2f}", f"{e['f1']:.2f}", m["steps"], m["train_features"],
                                   f"{m['train_features_per_second']:.1f}", f"{e['eval_features_per_second']:.1f}"])
        elif str(m.get("task", "")).endswith("-zero-shot"):  # `nlp-ssl evaluate ... output_dir=` (no labels)
            reported = "dev" if "dev" in m["eval"] else next(iter(m["eval"]))
            means[name] = (f"{reported} Spearman", 100 * m["eval"][reported]["spearmanr"], None, (m.get("pooling"),))
            for split, e in m["eval"].items():
                rows["zero_shot"].append([name, m["model"], m["pooling"], split, f"{e['spearmanr']:.4f}",
                                          f"{e['pearson']:.4f}"])
        elif run.kind == "finetune" and isinstance(m.get("eval"), dict) and m["eval"]:  # one rate, one seed
            split = m.get("report_split") or next(iter(m["eval"]))
            metric, value = next((k, v) for k, v in m["eval"][split].items() if isinstance(v, (int, float)))
            rows["classification"].append([name, m.get("init", "-"), m.get("max_train_samples") or "all",
                                           f"{split} {metric}", f"{100 * value:.1f}", "-", "-", "-"])
    rows["pairs"], refused = pairs(means, methods)
    return {k: (HEADERS[k], r) for k, r in rows.items() if r}, refused, runs


def pairs(means: dict[str, tuple[str, float, float | None, tuple]], methods: set[str]) -> tuple[list[list], list[str]]:
    """Each TASK-scratch run against every other TASK-ENCODER run whose metric, seeds and training examples match."""
    out, refused = [], []
    tasks = sorted((n[:-len("-scratch")] for n in means if n.endswith("-scratch")), key=len, reverse=True)
    for name in sorted(means):
        candidates = [t for t in tasks if name.startswith(t + "-") and name != t + "-scratch"]
        if not candidates or name in methods or name.endswith("-scratch"):
            continue
        p_what, pre, p_std, p_setup = means[name]
        task = next((t for t in candidates if (means[t + "-scratch"][0], means[t + "-scratch"][3]) == (p_what, p_setup)),
                    None)
        if task is None:  # named like a pair but set up differently: refused (reported, the rest still printed)
            what, _, _, setup = means[candidates[0] + "-scratch"]
            refused.append(f"{candidates[0]}-scratch and {name} are not comparable: {what} {setup} vs {p_what} "
                           f"{p_setup} (metric and split, seeds, training examples must match)")
            continue
        what, scratch, s_std, _ = means[task + "-scratch"]
        spread = None if s_std is None or p_std is None else 2 * max(s_std, p_std)
        verdict = "-" if spread is None else ("yes" if abs(pre - scratch) > spread else "no") + f" (2 x {spread / 2:.1f})"
        out.append([task, name[len(task) + 1:], what, f"{scratch:.1f}", f"{pre:.1f}", f"{pre - scratch:+.1f}", verdict])
    return out, refused


def encoder_record(enc: str | Path) -> dict:
    """What a study's encoder recorded: its length, validation figures, run_info and provenance."""
    from nlp_ssl.layout import read_run

    run = read_run(enc)
    keep = ("steps", "tokens_seen", "train_runtime_s", "eval_loss", "eval_mlm_accuracy", "eval_perplexity", "provenance")
    return {"dir": str(enc), **{k: run.metrics[k] for k in keep if k in run.metrics},
            "run_info": {k: run.run_info.get(k) for k in ("argv", "time", "versions", "git", "machine")}}


# ---------------------------------------------------------------------------------------------------------------
# The spread over pretraining runs (payoff.py spread)

def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def report_scores(metrics: dict) -> list[float]:
    """Per fine-tuning seed, the reported split's headline metric (%)."""
    split, metric = metrics["report_split"], metrics["selection"]["metric"]
    return [100 * r["eval"][split][metric] for r in metrics["runs"]]


def spread(encoders: dict[str, dict], scores: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """{task: {"scratch": {...}, budget: {...}}}: the spread over pretraining runs and over fine-tuning seeds, and
    whether pretrained vs scratch (and token vs time budget) exceed it. A comparison exceeds the spread when its
    difference is more than twice the largest standard deviation that bears on it (for the pretrained side over
    pretraining runs and over fine-tuning seeds within a run, since a run's mean over seeds hides the second; for
    scratch over fine-tuning seeds)."""
    out: dict = {}
    for task, by_run in scores.items():
        s_mean, s_std = mean_std(by_run["scratch"])
        t = {"scratch": {"per_seed": by_run["scratch"], "mean": s_mean, "std_over_finetune_seeds": s_std}}
        for budget in ("tokens", "time"):
            runs = {name: v for name, v in by_run.items() if encoders.get(name, {}).get("budget") == budget}
            if not runs:
                continue
            m, sd_pre = mean_std([statistics.fmean(v) for v in runs.values()])
            pooled = [x for v in runs.values() for x in v]
            within = statistics.fmean(mean_std(v)[1] for v in runs.values())
            bar = 2 * max(sd_pre, within, s_std)  # a pretrained figure varies with its fine-tuning seed too
            t[budget] = {"runs": {name: {"per_seed": v, "mean": statistics.fmean(v)} for name, v in runs.items()},
                         "mean": m, "std_over_pretraining_runs": sd_pre, "std_over_finetune_seeds_within_run": within,
                         "pooled_mean": statistics.fmean(pooled), "pooled_std": mean_std(pooled)[1],
                         "minus_scratch": m - s_mean, "exceeds_spread": abs(m - s_mean) > bar, "spread_bar": bar}
        if "tokens" in t and "time" in t:
            d = t["tokens"]["mean"] - t["time"]["mean"]
            bar = 2 * max(t[b][k] for b in ("tokens", "time")
                          for k in ("std_over_pretraining_runs", "std_over_finetune_seeds_within_run"))
            t["tokens_minus_time"] = {"difference": d, "exceeds_spread": abs(d) > bar, "spread_bar": bar}
        out[task] = t
    return out


def spread_tables(encoders: dict[str, dict], summary: dict) -> Tables:
    enc_rows = [[name, e["budget"], e["seed"], e["steps"], f"{e['tokens_seen'] / 1e6:.2f}M", f"{e['eval_loss']:.3f}",
                 f"{e['minutes']:.1f}", " / ".join(f"{x:.1f}" for x in e["load_start"][:1] + e["load_end"][:1])]
                for name, e in encoders.items()]
    rows = []
    for task, t in summary.items():
        rows.append([task, "scratch", f"{t['scratch']['mean']:.1f}", "-", f"{t['scratch']['std_over_finetune_seeds']:.1f}",
                     " ".join(f"{x:.1f}" for x in t["scratch"]["per_seed"]), "-", "-"])
        for budget in ("tokens", "time"):
            if budget in t:
                b = t[budget]
                rows.append([task, f"pretrained ({budget} budget)", f"{b['mean']:.1f}",
                             f"{b['std_over_pretraining_runs']:.1f}", f"{b['std_over_finetune_seeds_within_run']:.1f}",
                             "; ".join(" ".join(f"{x:.1f}" for x in r["per_seed"]) for r in b["runs"].values()),
                             f"{b['minus_scratch']:+.1f}",
                             f"{'yes' if b['exceeds_spread'] else 'no'} (bar {b['spread_bar']:.1f})"])
        if "tokens_minus_time" in t:
            d = t["tokens_minus_time"]
            rows.append([task, "token minus time budget", f"{d['difference']:+.1f}", "-", "-", "-", "-",
                         f"{'yes' if d['exceeds_spread'] else 'no'} (bar {d['spread_bar']:.1f})"])
    return {"encoders": (["encoder", "budget", "seed", "steps", "tokens", "val MLM loss", "train min",
                          "load 1-min start / end"], enc_rows),
            "spread": (["task", "init", "mean (%)", "std over pretraining runs", "std over ft seeds (within a run)",
                        "per fine-tuning seed, per pretraining run", "minus scratch", "exceeds spread"], rows)}
