"""Write the figures of benchmarks/results/*.json into the documents, so no table is typed by hand.

Every block

    <!-- table: NAME/TABLE -->
    ...
    <!-- /table -->

in benchmarks/README.md, README.md and docs/*.md is replaced by table TABLE of benchmarks/results/NAME.json,
rendered by `harness.markdown`. `--check` changes nothing and exits 1 naming every stale block (a test runs it).
A table typed by hand (outside a block, e.g. a shorter one in docs/) is checked against the results instead:
`--sources` lists every figure in such a table that no results file holds.

Usage:
    python benchmarks/tables.py            # rewrite the blocks
    python benchmarks/tables.py --check    # are they up to date?
    python benchmarks/tables.py --sources  # figures in hand-typed tables that no results file holds
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from harness import REPO, RESULTS, markdown

BLOCK = re.compile(r"(?P<open><!-- table: (?P<name>[\w.-]+)/(?P<table>[\w-]+) -->\n)(?P<body>.*?)(?P<close><!-- /table -->)",
                   re.S)


def documents() -> list[Path]:
    return [p for p in [REPO / "benchmarks" / "README.md", REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]
            if p.is_file()]


def render(text: str, where: str = "<text>", results: Path = RESULTS) -> str:
    """`text` with every table block filled from its results file; an error names the block and the fix."""
    def fill(m: re.Match) -> str:
        path = results / f"{m['name']}.json"
        if not path.is_file():
            raise SystemExit(f"{where}: block {m['name']}/{m['table']}: no {path}; run the benchmark "
                             "that writes it or fix the marker")
        try:
            body = markdown(json.loads(path.read_text()), m["table"])
        except KeyError as e:
            raise SystemExit(f"{where}: block {m['name']}/{m['table']}: {e.args[0]}") from None
        return m["open"] + body + "\n" + m["close"]
    return BLOCK.sub(fill, text)


NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
FIGURE_DOCUMENTS = ("README.md", "docs/results.md")  # the documents whose tables hold measured figures


def numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in NUMBER.findall(text)}


def unsourced(text: str, results: Path = RESULTS) -> list[tuple[str, list[str]]]:
    """(row, figures) of hand-typed table rows (outside blocks) with figures that no results file holds, to the
    digits shown (81.5 is sourced by 81.5 or 81.46; 8.2 by 8.15)."""
    known = {float(n) for p in results.glob("*.json") for n in numbers(p.read_text())}

    def sourced(fig: str) -> bool:
        digits = len(fig.partition(".")[2])
        return any(abs(round(k, digits) - float(fig)) < 1e-9 for k in known)
    rows = [line for line in BLOCK.sub("", text).splitlines() if line.startswith("|") and not set(line) <= set("|-: ")]
    found = [(row, sorted(f for f in numbers(row) if not sourced(f))) for row in rows]
    return [(row, figs) for row, figs in found if figs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 naming the stale documents")
    ap.add_argument("--sources", action="store_true", help="list figures of hand-typed tables that no results file holds")
    args = ap.parse_args(argv)
    if args.sources:
        docs = [REPO / d for d in FIGURE_DOCUMENTS if (REPO / d).is_file()]
        found = [(doc, row, figs) for doc in docs for row, figs in unsourced(doc.read_text())]
        for doc, row, figs in found:
            print(f"{doc.relative_to(REPO)}: {', '.join(figs)} not in any results file: {row}")
        return 1 if found else 0
    stale = []
    for doc in documents():
        text = doc.read_text()
        new = render(text, str(doc.relative_to(REPO)))
        if new != text:
            stale.append(str(doc.relative_to(REPO)))
            if not args.check:
                doc.write_text(new)
    if args.check and stale:
        print(f"tables out of date in {', '.join(stale)}: run python benchmarks/tables.py", file=sys.stderr)
        return 1
    print(("rewrote " + ", ".join(stale)) if stale and not args.check else "tables up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
