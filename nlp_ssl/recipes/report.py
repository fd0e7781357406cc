"""`nlp-ssl report RUN_DIR [RUN_DIR ...] --output DIR`: a markdown report comparing runs, with plots.

setup (arguments) -> find the runs (a directory of runs counts as its runs) -> `report.write_report` -> print
where the report is.
"""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nlp-ssl report", description="write a markdown report (and the plots it "
                                "links) comparing runs: pretraining curves, pretrained vs scratch per label count "
                                "with mean ± std and bootstrap confidence intervals, label efficiency, model cards")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories, or directories of runs (runs/quickstart)")
    p.add_argument("--output", required=True, metavar="DIR", help="where report.md and plots/ are written")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for the confidence intervals (0: none)")
    p.add_argument("--title", default="nlp-ssl report")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from nlp_ssl.report import write_report

    path = write_report(args.runs, args.output, n_resamples=args.bootstrap, title=args.title)
    print(f"report written to {path} (open it in a markdown viewer; plots in {path.parent / 'plots'})")
    return 0
