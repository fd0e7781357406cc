"""Tabulate fine-tuning results: every `metrics.json` under a directory (benchmarks/finetune_figures.sh writes
runs/figures). Classification summaries: the report split's headline metric, mean ± std over seeds, the learning
rate chosen on the selection split and the grid (marked `oracle` when that split is the reported one); self-training: the metric per round; QA: EM/F1 and training features/s.

Usage: python benchmarks/summarize_finetune.py runs/figures
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import table


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/figures")
    cls_rows, st_rows, qa_rows = [], [], []
    for path in sorted(root.glob("*/metrics.json")):
        m = json.loads(path.read_text())
        name = path.parent.name
        if "summary" in m:  # a multi-seed classification run
            split = m["report_split"]
            metric = m["selection"]["metric"]
            s = m["summary"][split][metric]
            per_seed = " ".join(f"{100 * r['eval'][split][metric]:.1f}" for r in m["runs"])
            grid = " ".join(f"{lr}:{100 * v:.1f}" for lr, v in m["selection"]["grid"].items())
            cls_rows.append([name, m["init"], m["max_train_samples"] or "all", f"{split} {metric}",
                             f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}", per_seed,
                             f"{m['selection']['best_learning_rate']:g}"
                             + (" (oracle)" if m["selection"].get("oracle") else ""), grid])
            for rnd in m.get("self_training_rounds", []):
                r = rnd["summary"][split][metric]
                st_rows.append([name, rnd["round"], " ".join(map(str, rnd["pseudo_labels"])),
                                f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}"])
        elif "train_features" in m:  # extractive QA
            for split, e in m["eval"].items():
                em = e.get("exact_match", e.get("exact"))
                qa_rows.append([name, m["init"], split, f"{em:.2f}", f"{e['f1']:.2f}", m["steps"], m["train_features"],
                                f"{m['train_features_per_second']:.1f}", f"{e['eval_features_per_second']:.1f}"])
    if cls_rows:
        print(table(["run", "init", "labels", "metric", "mean ± std (%)", "per seed", "best lr", "grid (seed 1, selection split)"],
                    cls_rows))
    if st_rows:
        print()
        print(table(["run", "round", "pseudo-labels per seed", "accuracy mean ± std (%)"], st_rows))
    if qa_rows:
        print()
        print(table(["run", "init", "split", "EM", "F1", "steps", "train windows", "train windows/s", "eval windows/s"],
                    qa_rows))


if __name__ == "__main__":
    main()
