"""Generate docs/configuration.md: every key of every command, from the config classes' docstrings.

The source is the one `nlp-ssl <command> --print-config` reads (`config.field_docs`: the `Attributes:` section
of each config class), so the reference page and the command line cannot disagree. A test
(`tests/test_docs.py`) fails when the page in the tree differs from what this module writes now.

    python -m nlp_ssl.docs             # rewrite docs/configuration.md
    python -m nlp_ssl.docs --check     # exit 1 when it is out of date

Example:
    >>> text = configuration_markdown()
    >>> text.splitlines()[0]
    '# Configuration reference'
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import re
import sys
import typing
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

# The private helpers are the ones `--print-config` renders with (config.describe), so both read types and
# defaults the same way.
from nlp_ssl.config import _MISSING, _dataclass_of, _default_of, _flow, _type_name, field_docs, renamed_path, to_dict

CONFIGURATION_PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
REGENERATE = "python -m nlp_ssl.docs"


def variants() -> list[tuple[str, str, dict, str]]:
    """(section title, command, raw config that selects the class, note) for every config class a command reads:
    one per command, and for `finetune` one per config class of the task registry (tasks that share a class
    share a section)."""
    from nlp_ssl.cli import COMMANDS

    out = []
    for command in COMMANDS:
        if command != "finetune":
            out.append((f"nlp-ssl {command}", command, {}, ""))
            continue
        from nlp_ssl.tasks.registry import TASKS

        by_config: dict[str, list[str]] = {}
        for name, spec in TASKS.items():
            # the shipped tasks only: a plug-in (or a test's toy task) registered in this process is not ours
            if spec.config is not None and spec.config.startswith("nlp_ssl."):
                by_config.setdefault(spec.config, []).append(name)
        for names in by_config.values():
            note = "Selected by " + " or ".join(f"`task.type: {n}`" for n in names) + "."
            out.append((f"nlp-ssl finetune: {', '.join(names)}", command, {"task": {"type": names[0]}}, note))
    return out


# Commands on run directories: flags, not a config (module with a `parser()` function).
FLAG_COMMANDS: list[tuple[str, str]] = [
    ("nlp-ssl push", "nlp_ssl.recipes.push"),
    ("nlp-ssl report", "nlp_ssl.recipes.report"),
    ("nlp-ssl answer", "nlp_ssl.answer"),
]


def config_class(command: str, data: dict) -> type:
    """The config class `nlp-ssl COMMAND` builds from the raw config `data`."""
    from nlp_ssl.cli import recipe_for

    module_name, class_name = recipe_for(command, data)
    return getattr(importlib.import_module(module_name), class_name)


def slug(title: str) -> str:
    """The anchor GitHub gives a markdown heading (lower case, punctuation dropped, spaces to hyphens)."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


def _summary(cls: type) -> str:
    """The first paragraph of a class's docstring, on one line."""
    return " ".join(inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].split())


def _cell(text: str) -> str:
    """`text` as one table cell: one line, pipes escaped, and `<name>` outside code spans kept as text (GitHub
    would read it as an HTML tag and drop it)."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


def _type_text(tp: Any) -> str:
    """A field's type for the table: `config._type_name`, with the choices of a Literal as code."""
    return _cell(re.sub(r"'([^']*)'", r"`\1`", _type_name(tp)))


def _value(value: Any) -> str:
    text = _flow(to_dict(value))
    return f"`{text}`" if "`" not in text else text


def _nested_classes(cls: type) -> Iterator[type]:
    """Every dataclass a field of `cls` (or of a nested one) holds, directly or as `name -> dataclass`."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        sub = _dataclass_of(hints[f.name]) or _mapping_of_dataclass(hints[f.name])
        if sub is not None:
            yield sub
            yield from _nested_classes(sub)


def _mapping_of_dataclass(tp: Any) -> type | None:
    """`X` for an annotation `dict[str, X]` (or `dict[str, X] | None`) whose X is a dataclass."""
    for arm in (tp, *typing.get_args(tp)):
        if typing.get_origin(arm) is dict:
            args = typing.get_args(arm)
            if len(args) == 2 and dataclasses.is_dataclass(args[1]):
                return args[1]
    return None


def _rows(cls: type, prefix: str, shared: set[type]) -> list[str]:
    """Table rows `| key | type | default | description |` for every key of `cls`, nested sections flattened to
    dotted keys; a class in `shared` gets one row that links to its own section."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key = prefix + f.name
        default = _default_of(f)
        desc = docs.get(f.name, "")
        sub = _dataclass_of(hints[f.name])
        mapped = _mapping_of_dataclass(hints[f.name])
        target = sub or mapped
        if target is not None and target in shared:
            title = _shared_title(target)
            kind = "mapping of name -> " if mapped else ""
            link = f"{kind}[{target.__name__}](#{slug(title)})"
            if default is _MISSING:
                shown = "required"
            elif f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(default):
                shown = "its keys' defaults"
            else:
                shown = _value(default)
            text = desc if desc and not desc.startswith("see ") else _summary(target)
            rows.append(f"| `{key}` | {link} | {shown} | {_cell(text)} |")
            continue
        if sub is not None:
            optional = type(None) in typing.get_args(hints[f.name])
            note = desc if desc and not desc.startswith("see ") else _summary(sub)
            if optional:
                shown = "required" if default is _MISSING else _value(default)
                rows.append(f"| `{key}` | mapping or null | {shown} | {_cell(note)} "
                            "The keys below apply when it is set. |")
            else:
                rows.append(f"| `{key}` | mapping | | {_cell(note)} |")
            rows += _rows(sub, key + ".", shared)
            continue
        if mapped is not None:
            rows.append(f"| `{key}` | mapping of name -> mapping | {_value(None if default is _MISSING else default)} "
                        f"| {_cell(desc)} Each entry has the keys below. |")
            rows += _rows(mapped, key + ".NAME.", shared)
            continue
        shown = "required" if default is _MISSING else _value(default)
        rows.append(f"| `{key}` | {_type_text(hints[f.name])} | {shown} | {_cell(desc)} |")
    return rows


def _shared_title(cls: type) -> str:
    return f"Shared section: {cls.__name__}"


def _renamed(cls: type, prefix: str = "") -> list[str]:
    """`old -> new` for every old spelling a command refuses (the RENAMED tables, nested ones included)."""
    out = [f"`{prefix}{old}` -> `{renamed_path(prefix, new)}`" for old, new in getattr(cls, "RENAMED", {}).items()]
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        sub = _dataclass_of(hints.get(f.name)) if f.init else None
        if sub is not None:
            out += _renamed(sub, f"{prefix}{f.name}.")
    return out


def _table(rows: list[str]) -> list[str]:
    return ["| key | type | default | description |", "|---|---|---|---|", *rows]


def _flag_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | default | description |", "|---|---|---|"]
    for action in parser._actions:  # argparse has no public list of its arguments
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            name = ", ".join(action.option_strings)
            if action.nargs != 0:
                name += f" {action.metavar or action.dest.upper()}"
        else:
            name = action.metavar or action.dest
            name += " ..." if action.nargs in ("+", "*") else ""
        if action.required or not action.option_strings:
            default = "required"
        elif action.nargs == 0:
            default = ""
        else:
            default = "" if action.default is None else f"`{action.default}`"
        rows.append(f"| `{name}` | {default} | {_cell(action.help or '')} |")
    return rows


def configuration_markdown() -> str:
    """The text of docs/configuration.md."""
    classes = [(title, config_class(command, data), note) for title, command, data, note in variants()]
    uses = Counter(c for _, cls, _ in classes for c in set(_nested_classes(cls)))
    shared = {c for c, n in uses.items() if n >= 2}
    lines = [
        "# Configuration reference",
        "",
        f"<!-- Generated by `{REGENERATE}` from the config classes' docstrings; do not edit by hand. -->",
        "",
        "Every command reads a YAML file plus `key=value` overrides (dotted keys reach into sections: "
        "`train.learning_rate=3e-4`). This page lists every key; `nlp-ssl COMMAND --print-config [CONFIG] "
        "[key=value ...]` prints the same keys with the values a config resolves to. An unknown key is an error "
        "that suggests the nearest one; a config may start from another with `base: other.yaml` (a path relative "
        "to the file, or a list of them) and state only what differs.",
        "",
    ]
    toc = [title for title, _, _ in classes] + [title for title, _ in FLAG_COMMANDS] + sorted(
        _shared_title(c) for c in shared)
    lines += [f"- [{t}](#{slug(t)})" for t in toc] + [""]
    for title, cls, note in classes:
        lines += [f"## {title}", "", f"{_summary(cls)} {note}".strip(), ""]
        lines += _table(_rows(cls, "", shared)) + [""]
        renamed = _renamed(cls)
        if renamed:
            lines += ["Old spellings, refused with the new name: " + ", ".join(renamed) + ".", ""]
    for title, module_name in FLAG_COMMANDS:
        parser = getattr(importlib.import_module(module_name), "parser", None)
        lines += [f"## {title}", ""]
        if parser is None:
            lines += [f"Flags: `{title} --help`.", ""]
            continue
        p = parser()
        lines += [(p.description or "").strip().rstrip(".") + ".", "", *_flag_rows(p), ""]
    for cls in sorted(shared, key=lambda c: _shared_title(c)):
        lines += [f"## {_shared_title(cls)}", "", _summary(cls), ""]
        lines += _table(_rows(cls, "", shared - {cls})) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nlp_ssl.docs", description="write docs/configuration.md")
    ap.add_argument("--check", action="store_true", help="exit 1 when the page differs from what would be written")
    ap.add_argument("--output", default=str(CONFIGURATION_PAGE))
    args = ap.parse_args(argv)
    text = configuration_markdown()
    out = Path(args.output)
    if args.check:
        same = out.is_file() and out.read_text(encoding="utf-8") == text
        print(f"{out}: {'up to date' if same else f'out of date; run `{REGENERATE}`'}")
        return 0 if same else 1
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
