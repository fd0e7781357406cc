"""The user documents (README.md, docs/*.md) stay true: every relative link resolves (file and anchor), every
`nlp-ssl` command shown in a code block parses against today's config classes, the generated configuration
reference equals what its generator writes now, and no internal issue number leaks into them."""

from __future__ import annotations

import re
import shlex
import unicodedata
from pathlib import Path

import pytest

from nlp_ssl import cli, docs

ROOT = Path(__file__).resolve().parents[1]
USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$|\.\.\.")  # CONFIG, MODEL_DIR, RUN_DIR ...: not a real argument


def _prose(text: str) -> str:
    """`text` without fenced code blocks and inline code spans (links there are examples, not links)."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def _code_blocks(text: str) -> list[str]:
    blocks, current, fenced = [], [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            if fenced:
                blocks.append("\n".join(current))
                current = []
            fenced = not fenced
        elif fenced:
            current.append(line)
    return blocks


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.replace("`", "").strip().lower()
    text = "".join(c for c in text if c in "-_ " or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def broken_links(path: Path) -> list[str]:
    """The relative links of a markdown file that lead nowhere: `target (why)`."""
    text = _prose(path.read_text(encoding="utf-8"))
    problems = []
    for target in LINK.findall(text) + IMAGE.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{target} (no file {dest})")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target} (no heading #{anchor} in {dest.name})")
    return problems


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, headings read with their code spans (GitHub keeps their text); a
    repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = github_slug(m.group(1))
            n = seen.get(slug, 0)
            out.add(slug if n == 0 else f"{slug}-{n}")
            seen[slug] = n + 1
    return out


@pytest.mark.parametrize("path", USER_DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_link_check_finds_a_broken_link_and_anchor(tmp_path):
    (tmp_path / "a.md").write_text("# Title `x`\n\n## Second part\n\nsee [b](b.md), [here](#second-part), "
                                   "[x](#title-x), [gone](#nowhere), `[code](not-a-link.md)`\n\n```\n[c](c.md)\n```\n")
    (tmp_path / "b.md").write_text("# B\n\n[back](a.md#second-part) [bad](a.md#third)\n")
    assert broken_links(tmp_path / "a.md") == ["#nowhere (no heading #nowhere in a.md)"]
    assert broken_links(tmp_path / "b.md") == ["a.md#third (no heading #third in a.md)"]
    (tmp_path / "b.md").unlink()
    assert broken_links(tmp_path / "a.md")[0].startswith("b.md (no file")


# ---------------------------------------------------------------------------------------------------------
# Commands shown in code blocks


def shown_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `nlp-ssl`) for every nlp-ssl command in a code block of the user docs; `accelerate
    launch ... scripts/NAME.py CONFIG ...` and `python -m nlp_ssl ...` count as the command they run."""
    found = []
    for path in USER_DOCS:
        for block in _code_blocks(path.read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                if line.lstrip().startswith(">>>") or "nlp-ssl" not in line and "scripts/" not in line \
                        and "nlp_ssl " not in line:
                    continue
                try:
                    tokens = shlex.split(line, comments=True)
                except ValueError:
                    continue
                where = f"{path.relative_to(ROOT)}: {line.strip()}"
                for part in _split_on(tokens, {"&&", ";", "||", "|"}):
                    argv = _nlp_ssl_argv(part)
                    if argv:
                        found.append((where, argv))
    return found


def _split_on(tokens: list[str], seps: set[str]) -> list[list[str]]:
    parts, current = [], []
    for t in tokens:
        if t in seps:
            parts.append(current)
            current = []
        else:
            current.append(t)
    return parts + [current]


def _nlp_ssl_argv(tokens: list[str]) -> list[str] | None:
    for i, t in enumerate(tokens):
        if t.endswith("nlp-ssl"):
            return tokens[i + 1:]
        if t == "-m" and tokens[i + 1:i + 2] == ["nlp_ssl"]:
            return tokens[i + 2:]
        m = re.match(r"^scripts/(\w+)\.py$", t)
        if m and m.group(1) in cli.SCRIPTS and tokens[:2] == ["accelerate", "launch"]:
            return [cli.SCRIPTS[m.group(1)], *tokens[i + 1:]]
    return None


COMMANDS = shown_commands()


def test_the_docs_show_commands():
    # a test that found nothing to check would pass for the wrong reason
    assert len(COMMANDS) >= 30, COMMANDS


@pytest.mark.parametrize("where,argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_shown_command_parses(where, argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # config paths in the docs are relative to the repository root
    for name in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(name, raising=False)  # cli.main sets them outside a terminal: restored afterwards
    args = [a for a in argv if a != "--debug"]
    if not args or args[0].startswith("-"):  # `nlp-ssl --help`, `nlp-ssl --version`
        assert set(args) <= {"--help", "--version"}, where
        return
    command, rest = args[0], args[1:]
    if any(PLACEHOLDER.search(a.split("=", 1)[-1]) for a in rest if not a.startswith("-")):
        pytest.skip(f"placeholder argument: {where}")
    if command in ("push", "report", "answer"):
        module = {"push": "nlp_ssl.recipes.push", "report": "nlp_ssl.recipes.report", "answer": "nlp_ssl.answer"}
        parser = getattr(__import__(module[command], fromlist=["parser"]), "parser", None)
        if parser is None:
            pytest.skip(f"{command} has no parser() to check against")
        parser().parse_args(rest)  # argparse exits (SystemExit) on a flag it does not know
        return
    assert command in cli.COMMANDS, f"{where}: no command {command!r}"
    if "--print-config" not in rest:
        rest = ["--print-config", *rest]
    config = next((a for a in rest if not a.startswith("-") and "=" not in a and a not in ("--data-dir",)), None)
    if command in ("evaluate", "predict") and config and not config.endswith((".yaml", ".yml")):
        model_dir = tmp_path / "model"  # a run directory the docs name: an existing folder stands in for it
        model_dir.mkdir()
        rest = [str(model_dir) if a == config else a for a in rest]
    rc = cli.main([command, *rest])
    out, err = capsys.readouterr()
    assert rc == 0, f"{where}\n{err}"
    assert f"every key of `nlp-ssl {command}`" in out


# ---------------------------------------------------------------------------------------------------------
# Generated reference and house rules


def test_configuration_reference_is_up_to_date():
    expected = docs.configuration_markdown()
    actual = docs.CONFIGURATION_PAGE.read_text(encoding="utf-8") if docs.CONFIGURATION_PAGE.is_file() else ""
    assert actual == expected, (f"docs/configuration.md differs from the config classes' docstrings: "
                                f"run `{docs.REGENERATE}` and commit the result")


def test_configuration_reference_covers_every_command():
    text = docs.configuration_markdown()
    for command in [*cli.COMMANDS, "push", "report", "answer"]:
        assert f"## nlp-ssl {command}" in text, command
    assert "| `train.learning_rate` |" in text or "| `learning_rate` |" in text


INTERNAL = re.compile(r"\bissues?\s+#?\d+|(?<![\w&/])#\d+\b", re.I)


@pytest.mark.parametrize("path", USER_DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_internal_issue_numbers(path):
    hits = [f"{n}: {line.strip()}" for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if INTERNAL.search(line)]
    assert hits == [], "user docs carry no internal issue numbers (they belong in commit messages)"
