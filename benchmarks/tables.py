"""Write the figures of benchmarks/results/*.json into the documents, so no table is typed by hand.

Every block

    <!-- table: NAME/TABLE -->
    ...
    <!-- /table -->

in benchmarks/README.md, README.md and docs/*.md is replaced by table TABLE of benchmarks/results/NAME.json,
rendered by `harness.markdown`. `--check` changes nothing and exits 1 naming every stale block (a test runs it).

Usage:
    python benchmarks/tables.py            # rewrite the blocks
    python benchmarks/tables.py --check    # are they up to date?
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 naming the stale documents")
    args = ap.parse_args(argv)
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
