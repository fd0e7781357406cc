"""The house's layering as a test: no import cycles among nlp_ssl modules, and no module importing one of a higher
layer (data flows one way: STYLE.md, "a module never reaches back upstream").

Imports are read with `ast`, not by importing, so every import counts, including those inside functions (a lazy
import hides a dependency from the import system, not from a reader) and those in modules nothing imports yet.
Imports under `if TYPE_CHECKING:` are left out: they never run.

A new module needs a place in LAYERS (longest prefix wins); the test that says so names the module.

Run as a script to print the figures (`python tests/test_layering.py [ROOT]`, ROOT defaulting to this checkout):
module count, import edges, cycles (strongly connected components of more than one module) and upward edges.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "nlp_ssl"

# Lowest first. A module may import modules of its own layer or below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("nlp_ssl", "nlp_ssl.errors", "nlp_ssl.faults", "nlp_ssl.layout", "nlp_ssl.artifact",
                    "nlp_ssl.config", "nlp_ssl.atomic", "nlp_ssl.progress", "nlp_ssl.guard")),
    # what every run uses to write, time, checkpoint, shard and score itself
    ("run plumbing", ("nlp_ssl.runinfo", "nlp_ssl.distributed", "nlp_ssl.checkpoints", "nlp_ssl.outputs",
                      "nlp_ssl.metrics", "nlp_ssl.squad_metrics", "nlp_ssl.evaluate_metrics", "nlp_ssl.plots",
                      "nlp_ssl.hub.inputs")),
    # data, tokenizers, models, objectives, the optimisation config and the pretraining loop, what an encoder
    # learned (fill-mask), model cards and push
    ("components", ("nlp_ssl.data", "nlp_ssl.tokenization", "nlp_ssl.modeling", "nlp_ssl.objectives",
                    "nlp_ssl.training", "nlp_ssl.optimization", "nlp_ssl.pretraining", "nlp_ssl.fill_mask",
                    "nlp_ssl.hub", "nlp_ssl.selection")),
    # fine-tuning tasks (their registry and run loop) and what dispatches through them
    ("tasks", ("nlp_ssl.tasks", "nlp_ssl.report")),
    ("recipes", ("nlp_ssl.recipes",)),
    # the command line, and what is generated from it (docs/configuration.md)
    ("commands", ("nlp_ssl.cli", "nlp_ssl.answer", "nlp_ssl.__main__", "nlp_ssl.docs")),
]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: str  # the importing file, relative to the root
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.path}:{self.line})"


def modules(root: Path = REPO) -> dict[str, Path]:
    """{dotted module name: file} of every module of the package under `root`."""
    out = {}
    for p in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(p.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_edges(root: Path = REPO) -> list[Edge]:
    """Every import of one package module by another, at any depth of the file.

    `from nlp_ssl.a import b` is an edge to the module `nlp_ssl.a.b` when that is a module, else to `nlp_ssl.a`.
    Importing a submodule also runs its parent packages' `__init__`; that implicit edge is not counted (a package
    re-exporting its submodules would otherwise form a cycle with each of them).
    """
    mods = modules(root)
    edges: list[Edge] = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from . import x, from ..a import b
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                if t in mods and t != name:
                    edges.append(Edge(name, t, rel, node.lineno))
    return sorted(set(edges), key=lambda e: (e.source, e.target, e.line))


def layer_of(module: str) -> int | None:
    """Index of the module's layer in LAYERS (the longest matching prefix), or None when it has none."""
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            # the package itself holds only its own __init__; any other prefix holds its submodules too
            if (module == p or (p != PACKAGE and module.startswith(p + "."))) and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted, largest first."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found, key=lambda c: (-len(c), c))


def upward(edges: list[Edge]) -> list[Edge]:
    """Edges from a module to one of a higher layer (modules without a layer are left to `unplaced`)."""
    out = []
    for e in edges:
        a, b = layer_of(e.source), layer_of(e.target)
        if a is not None and b is not None and b > a:
            out.append(e)
    return out


def unplaced(root: Path = REPO) -> list[str]:
    return [m for m in modules(root) if layer_of(m) is None]


def _describe_cycles(edges: list[Edge]) -> str:
    lines = []
    for comp in cycles(edges):
        inside = [str(e) for e in edges if e.source in comp and e.target in comp]
        lines.append(f"cycle of {len(comp)}: {', '.join(comp)}\n    " + "\n    ".join(inside))
    return "\n".join(lines)


def _describe_upward(edges: list[Edge]) -> str:
    return "\n".join(f"{e}: {LAYERS[layer_of(e.source)][0]} imports {LAYERS[layer_of(e.target)][0]}"
                     for e in upward(edges))


# ----------------------------------------------------------------------------------------------------------
# The house


def test_every_module_has_a_layer():
    missing = unplaced()
    assert not missing, f"modules with no layer: {missing}; add each to LAYERS in {Path(__file__).name}"


def test_no_import_cycles():
    edges = import_edges()
    assert not cycles(edges), "import cycles among nlp_ssl modules (break each by moving what both need lower):\n" \
        + _describe_cycles(edges)


def test_no_module_imports_a_higher_layer():
    edges = import_edges()
    assert not upward(edges), "modules importing a higher layer (move the imported code down, or the importer " \
        "up):\n" + _describe_upward(edges)


# ----------------------------------------------------------------------------------------------------------
# The analysis itself, on a hand-made package


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / PACKAGE / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_analysis_finds_function_level_cycles_and_upward_edges(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "errors.py": "import json\n",
        "cli.py": "from nlp_ssl.errors import X\n\ndef main():\n    from nlp_ssl.answer import run\n",
        "answer.py": "def run():\n    from nlp_ssl.cli import main\n",  # the cycle hides in two functions
        "layout.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from nlp_ssl.cli import main\n",
        "outputs.py": "from nlp_ssl import layout\n\ndef f():\n    from nlp_ssl.tasks.run import g\n",
        "tasks/__init__.py": "",
        "tasks/run.py": "from . import helpers\nfrom ..outputs import f\n",
        "tasks/helpers.py": "",
        "mystery.py": "",
    })
    edges = import_edges(root)
    assert {(e.source, e.target) for e in edges} == {
        ("nlp_ssl.cli", "nlp_ssl.errors"), ("nlp_ssl.cli", "nlp_ssl.answer"), ("nlp_ssl.answer", "nlp_ssl.cli"),
        ("nlp_ssl.outputs", "nlp_ssl.layout"), ("nlp_ssl.outputs", "nlp_ssl.tasks.run"),
        ("nlp_ssl.tasks.run", "nlp_ssl.tasks.helpers"), ("nlp_ssl.tasks.run", "nlp_ssl.outputs")}
    assert cycles(edges) == [["nlp_ssl.answer", "nlp_ssl.cli"], ["nlp_ssl.outputs", "nlp_ssl.tasks.run"]]
    assert [str(e) for e in upward(edges)] == ["nlp_ssl.outputs -> nlp_ssl.tasks.run (nlp_ssl/outputs.py:4)"]
    assert unplaced(root) == ["nlp_ssl.mystery"]


def test_layers_longest_prefix():
    assert LAYERS[layer_of("nlp_ssl.hub.inputs")][0] == "run plumbing"
    assert LAYERS[layer_of("nlp_ssl.hub.cards")][0] == "components"
    assert LAYERS[layer_of("nlp_ssl.tasks.registry")][0] == "tasks"
    assert layer_of("nlp_ssl.hubris") is None  # a prefix matches whole names only


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO
    edges = import_edges(root)
    comps, up = cycles(edges), upward(edges)
    print(f"{len(modules(root))} modules, {len(edges)} import edges, {len(comps)} import cycle(s) "
          f"({sum(map(len, comps))} modules in them), {len(up)} upward import(s), unplaced: {unplaced(root)}")
    if comps:
        print(_describe_cycles(edges))
    if up:
        print(_describe_upward(edges))
