"""Tabulate a finished quickstart (`make quickstart`, `scripts/quickstart.sh`) into benchmarks/results/quickstart.json,
the source of the quickstart table in README.md: what pretraining bought on SST-2 with few labels (pretrained vs
scratch, 3 seeds, rate chosen on the selection split, reported on GLUE dev), what fill-mask shows, QA's quality.

    python benchmarks/quickstart.py [runs/quickstart] --wall-seconds 670

Nothing is measured here: the figures are read from the runs, with each run's own provenance (commit, machine and
load average at its start and end); the wall-clock time of the whole job is the one `time` measured around it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import save_results  # noqa: E402

from nlp_ssl.layout import METRICS_FILE, read_json  # noqa: E402


def spread(summary: dict, split: str, metric: str) -> tuple[float, float]:
    s = summary["summary"][split][metric]
    return s["mean"], s["std"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="?", default="runs/quickstart")
    ap.add_argument("--wall-seconds", type=float, required=True, help="the whole job's wall clock, as `time` measured")
    ap.add_argument("--output", default=None, help="results file (default benchmarks/results/quickstart.json)")
    args = ap.parse_args(argv)
    root = Path(args.runs)
    rows, loads = [], []
    for labels in (200, 1000):
        pre, scr = (read_json(root / f"sst2-{labels}{s}" / METRICS_FILE) for s in ("", "-scratch"))
        (pm, ps), (sm, ss) = spread(pre, "dev", "accuracy"), spread(scr, "dev", "accuracy")
        rows.append([f"{labels:,}", f"{100 * sm:.1f} ± {100 * ss:.1f}", f"{100 * pm:.1f} ± {100 * ps:.1f}",
                     f"{100 * (pm - sm):+.1f}", f"{scr['selection']['best_learning_rate']:g} / "
                     f"{pre['selection']['best_learning_rate']:g}"])
        loads += [m["provenance"]["machine"]["load_average_start"][0] for m in (pre, scr)]
    encoder = read_json(root / "encoder" / METRICS_FILE)
    fill = read_json(root / "fill-mask.json")
    squad = read_json(root / "squad" / METRICS_FILE)
    dev = squad["eval"][squad["report_split"]]
    enc_prov = encoder["provenance"]
    provenance = {"measured": enc_prov["started"][:10], "commit": enc_prov["git"],
                  "machine": {**enc_prov["machine"], "load_average_fine_tuning_starts": loads},
                  "wall_seconds_whole_job": args.wall_seconds}
    tables = {
        "label_efficiency": (["SST-2 labels", "scratch", "pretrained", "difference", "rate chosen (scratch / pretrained)"],
                             rows),
        "fill_mask": (["model", "top-1", "top-5"],
                      [["encoder (600 steps)", f"{100 * fill['trained']['top1']:.1f}%", f"{100 * fill['trained']['top5']:.1f}%"],
                       ["same model untrained", f"{100 * fill['untrained']['top1']:.1f}%",
                        f"{100 * fill['untrained']['top5']:.1f}%"],
                       ["most frequent answers", f"{100 * fill['most_frequent_word']['top1']:.1f}%",
                        f"{100 * fill['most_frequent_word']['top5']:.1f}%"]]),
        "pretraining_and_qa": (["encoder", "validation MLM loss", "masked-token accuracy", "tokens/s",
                                "SQuAD dev (first 500) EM / F1"],
                               [[f"{encoder['steps']} steps, {encoder['tokens_seen'] / 1e6:.1f}M tokens",
                                 f"{encoder['eval_loss']:.2f}", f"{100 * encoder['eval_mlm_accuracy']:.1f}%",
                                 f"{encoder['tokens_per_second_mean']:,.0f}",
                                 f"{dev['exact_match']:.1f} / {dev['f1']:.1f}"]]),
    }
    save_results("quickstart", "The quickstart on 2 CPU cores: a 1.6M-parameter encoder pretrained for minutes on "
                 "unlabelled IMDB reviews against random weights, on SST-2 with few labels", tables,
                 path=Path(args.output) if args.output else None, rerun_with="make quickstart; then this script",
                 provenance=provenance)  # the runs' own (this script measures nothing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
