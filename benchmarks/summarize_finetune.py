"""Tabulate fine-tuning results: every `metrics.json` under a directory (benchmarks/finetune_figures.sh writes
runs/figures). Classification summaries: the report split's headline metric, mean ± std over seeds, the learning
rate chosen on the selection split and the grid (marked `oracle` when that split is the reported one);
self-training: the metric per round; QA: EM/F1 and training features/s; zero-shot STS (`nlp-ssl evaluate MODEL
task.type=sts_zero_shot output_dir=DIR`): Spearman and Pearson, in the pairs table on a 0-100 scale.

With `--json PATH` the tables are also written as JSON, with each run's provenance (commit and dirty flag,
library versions, machine, load average at start and end, as its metrics.json recorded them) and, with
`--encoder DIR`, the encoder's (its steps, tokens seen, validation loss, run_info.json and provenance).

Runs named `TASK-scratch` are also paired with every `TASK-ENCODER` run beside them (`TASK-pretrained` in
benchmarks/cpu_recipe.sh; one per objective in benchmarks/objectives_modernbert.sh; self-training runs are a
method, not an encoder, and are not paired): the difference of the means, and whether it exceeds twice the larger
of the two standard deviations over seeds (a side with one seed, as QA runs have, gives no spread and none is
claimed). A run named like a pair whose metric, seeds or training examples differ is refused: the tables still
print, and the script exits non-zero naming it.

Usage: python benchmarks/summarize_finetune.py runs/figures [--encoder DIR] [--json runs/figures/figures.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import table


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def encoder_record(enc: Path) -> dict:
    """What the figures' encoder recorded: its length, validation figures, run_info and provenance."""
    m, info = _json(enc / "metrics.json"), _json(enc / "run_info.json")
    keep = ("steps", "tokens_seen", "train_runtime_s", "eval_loss", "eval_mlm_accuracy", "eval_perplexity", "provenance")
    return {"dir": str(enc), **{k: m[k] for k in keep if k in m},
            "run_info": {k: info.get(k) for k in ("argv", "time", "versions", "git", "machine")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", nargs="?", default="runs/figures")
    ap.add_argument("--encoder", help="the pretrained encoder's directory (recorded in the JSON)")
    ap.add_argument("--json", help="also write the tables and every run's provenance to this file")
    args = ap.parse_args()
    root = Path(args.root)
    cls_rows, st_rows, qa_rows, zs_rows = [], [], [], []
    # run name -> (what, mean %, std % or None when fewer than 2 seeds, what must match for a fair pair)
    means: dict[str, tuple[str, float, float | None, tuple]] = {}
    methods: set[str] = set()  # runs that are a method (self-training), not an encoder: never paired
    runs: dict[str, dict] = {}
    for path in sorted(root.glob("*/metrics.json")):
        m = json.loads(path.read_text())
        name = path.parent.name
        runs[name] = {"provenance": m.get("provenance"), "init": m.get("init")}
        if "summary" in m:  # a multi-seed classification run
            split = m["report_split"]
            metric = m["selection"]["metric"]
            s = m["summary"][split][metric]
            means[name] = (f"{split} {metric}", 100 * s["mean"], 100 * s["std"] if s.get("n", 2) >= 2 else None,
                           (tuple(m.get("seeds") or ()), m.get("max_train_samples")))
            per_seed = " ".join(f"{100 * r['eval'][split][metric]:.1f}" for r in m["runs"])
            grid = " ".join(f"{lr}:{100 * v:.1f}" for lr, v in m["selection"]["grid"].items())
            cls_rows.append([name, m["init"], m["max_train_samples"] or "all", f"{split} {metric}",
                             f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}", per_seed,
                             f"{m['selection']['best_learning_rate']:g}"
                             + (" (oracle)" if m["selection"].get("oracle") else ""), grid])
            if m.get("self_training_rounds"):
                methods.add(name)
            for rnd in m.get("self_training_rounds", []):
                r = rnd["summary"][split][metric]
                st_rows.append([name, rnd["round"], " ".join(map(str, rnd["pseudo_labels"])),
                                f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}"])
        elif "train_features" in m:  # extractive QA
            for split, e in m["eval"].items():
                em = e.get("exact_match", e.get("exact"))
                if split == m.get("report_split", split):
                    means[name] = (f"{split} F1", e["f1"], None, (m.get("seed"), m.get("max_train_samples")))
                qa_rows.append([name, m["init"], split, f"{em:.2f}", f"{e['f1']:.2f}", m["steps"], m["train_features"],
                                f"{m['train_features_per_second']:.1f}", f"{e['eval_features_per_second']:.1f}"])
        elif str(m.get("task", "")).endswith("-zero-shot"):  # `nlp-ssl evaluate ... output_dir=` (no labels)
            reported = "dev" if "dev" in m["eval"] else next(iter(m["eval"]))
            e = m["eval"][reported]
            means[name] = (f"{reported} Spearman", 100 * e["spearmanr"], None, (m.get("pooling"),))
            for split, e in m["eval"].items():
                zs_rows.append([name, m["model"], m["pooling"], split, f"{e['spearmanr']:.4f}", f"{e['pearson']:.4f}"])
    pair_rows, refused = [], []
    # each TASK-scratch run against every other TASK-ENCODER run whose metric, seeds and training examples match;
    # of the TASK prefixes a name has, the longest that matches wins (sst2-1000-x is sst2-1000's, not sst2's)
    tasks = sorted((n[:-len("-scratch")] for n in means if n.endswith("-scratch")), key=len, reverse=True)
    for name in sorted(means):
        candidates = [t for t in tasks if name.startswith(t + "-") and name != t + "-scratch"]
        if not candidates or name in methods or name.endswith("-scratch"):
            continue
        p_what, pre, p_std, p_setup = means[name]

        def comparable(t: str) -> bool:  # same metric and split, seeds and training examples as T-scratch
            what, _, _, setup = means[t + "-scratch"]
            return (what, setup) == (p_what, p_setup)

        task = next((t for t in candidates if comparable(t)), None)
        if task is None:  # named like a pair but set up differently: refused (reported, the rest still printed)
            what, _, _, setup = means[candidates[0] + "-scratch"]
            refused.append(f"{candidates[0]}-scratch and {name} are not comparable: {what} {setup} vs {p_what} "
                           f"{p_setup} (metric and split, seeds, training examples must match)")
            continue
        what, scratch, s_std, setup = means[task + "-scratch"]
        spread = None if s_std is None or p_std is None else 2 * max(s_std, p_std)
        pair_rows.append([task, name[len(task) + 1:], what, f"{scratch:.1f}", f"{pre:.1f}", f"{pre - scratch:+.1f}",
                          "-" if spread is None else ("yes" if abs(pre - scratch) > spread else "no") + f" (2 x {spread / 2:.1f})"])
    heads = {"classification": ["run", "init", "labels", "metric", "mean ± std (%)", "per seed", "best lr",
                                "grid (seed 1, selection split)"],
             "self_training": ["run", "round", "pseudo-labels per seed", "accuracy mean ± std (%)"],
             "qa": ["run", "init", "split", "EM", "F1", "steps", "train windows", "train windows/s", "eval windows/s"],
             "zero_shot": ["run", "model", "pooling", "split", "Spearman", "Pearson"],
             "pairs": ["task", "encoder", "metric", "scratch", "encoder's", "difference", "beyond 2 x the larger std?"]}
    tables = [(k, rows) for k, rows in (("classification", cls_rows), ("self_training", st_rows), ("qa", qa_rows),
                                        ("zero_shot", zs_rows), ("pairs", pair_rows)) if rows]
    if args.json:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from nlp_ssl.runinfo import git_revision, library_versions

        record = {"command": " ".join(["python", *sys.argv]), "tabulated_at": {"git": git_revision(),
                                                                             "versions": library_versions()},
                  "encoder": encoder_record(Path(args.encoder)) if args.encoder else None,
                  "tables": {k: {"headers": heads[k], "rows": rows} for k, rows in tables},
                  "runs": runs}
        Path(args.json).write_text(json.dumps(record, indent=2, default=str) + "\n")
        print(f"written to {args.json}")
    print("\n\n".join(table(heads[k], rows) for k, rows in tables))
    if refused:
        sys.exit("\n".join(refused))


if __name__ == "__main__":
    main()
