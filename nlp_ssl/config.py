"""Typed configs: YAML files plus `key=value` overrides, turned into dataclasses.

Every command owns a dataclass (see `nlp_ssl.recipes`). Loading is strict: an unknown key is an error that
suggests the nearest valid key, every value is type-checked, and all problems of a file are gathered and
raised together as one `ConfigError`, so a user fixes a config in one pass rather than one key per run.

Only the standard library and PyYAML are imported here so that config errors answer in well under a second.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Cfg:
    ...     lr: float = 1e-3
    >>> from_dict(Cfg, {"lr": 3e-4}).lr
    0.0003
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from nlp_ssl.errors import ConfigError

T = TypeVar("T")

_MISSING = object()


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple):
        args = get_args(tp)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str, problems: list[str], failed: set[str] | None = None) -> Any:
    """Check `value` against the type annotation `tp`; return the converted value or _MISSING on error."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            problems.append(f"{key}: must not be null (expected {_type_name(tp)})")
            return _MISSING
        # Try each member quietly; report once if none fits.
        for arg in args:
            if arg is type(None):
                continue
            scratch: list[str] = []
            out = _convert(value, arg, key, scratch)
            if not scratch:
                return out
        problems.append(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return _MISSING
    if origin is Literal:
        choices = get_args(tp)
        if value in choices:
            return value
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{key}: {value!r} is not one of {', '.join(repr(c) for c in choices)}{hint}")
        return _MISSING
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
            return _MISSING
        built = _build(tp, value, key + ".", problems, failed)
        return _MISSING if built is None else built
    if origin in (list, tuple):
        (item_tp,) = get_args(tp)[:1] or (Any,)
        if not isinstance(value, (list, tuple)):
            problems.append(f"{key}: expected {_type_name(tp)}, got {value!r}")
            return _MISSING
        out = [_convert(v, item_tp, f"{key}[{i}]", problems, failed) for i, v in enumerate(value)]
        return _MISSING if any(o is _MISSING for o in out) else out
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{key}: expected a mapping, got {value!r}")
            return _MISSING
        args = get_args(tp)
        if len(args) != 2:
            return dict(value)
        out = {str(k): _convert(v, args[1], f"{key}.{k}", problems, failed) for k, v in value.items()}
        return _MISSING if any(o is _MISSING for o in out.values()) else out
    if value is None:
        problems.append(f"{key}: must not be null (expected {_type_name(tp)})")
        return _MISSING
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    else:
        if isinstance(value, tp):
            return value
    problems.append(f"{key}: expected {_type_name(tp)}, got {value!r}")
    return _MISSING


def _build(cls: type[T], data: dict, prefix: str, problems: list[str], failed: set[str] | None = None) -> T | None:
    """`cls(**data)` with every value converted; problems are appended, and keys whose value was rejected are
    added to `failed`. Returns None when the object cannot be built (a required key is missing or rejected,
    or the constructor itself refused the values: its message is reported)."""
    failed = set() if failed is None else failed
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    renamed = getattr(cls, "RENAMED", {})
    for key, value in data.items():
        if key not in fields and key in renamed:
            problems.append(f"{prefix}{key}: renamed; write '{renamed_path(prefix, renamed[key])}' instead "
                            "(one vocabulary across commands, Hugging Face TrainingArguments names where they exist)")
            continue
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; valid keys: {', '.join(fields)}"
            problems.append(f"{prefix}{key}: unknown key{hint}")
            continue
        out = _convert(value, hints[key], prefix + key, problems, failed)
        if out is _MISSING:
            failed.add(prefix + key)
        else:
            kwargs[key] = out
    required = [name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    for name in required:
        if name not in data:
            problems.append(f"{prefix}{name}: required key is missing")
    if any(name not in kwargs for name in required):  # reported above (missing, or its value rejected)
        return None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # a __post_init__ that refuses the values: report it with the rest
        problems.append(f"{prefix.rstrip('.') or cls.__name__}: {e}")
        failed.add(prefix.rstrip("."))
        return None


def renamed_path(prefix: str, new: str) -> str:
    """The full key a renamed key became: `new` is relative to the same section, or absolute when it starts
    with `/` (a key that moved to another section, e.g. `train.overwrite` -> `/overwrite`)."""
    return new[1:] if new.startswith("/") else prefix + new


def _dataclass_of(tp: Any) -> Any:
    """The dataclass inside an annotation (`X`, `X | None`), or None."""
    if dataclasses.is_dataclass(tp):
        return tp
    if get_origin(tp) in (Union, types.UnionType):
        found = [a for a in get_args(tp) if dataclasses.is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return None


def migrate(cls: type, data: dict) -> dict:
    """A copy of `data` with every old key spelling (the `RENAMED` table of each config class) moved to its new
    name, for reading configs that earlier versions wrote next to their runs (config.yaml). A config a user
    gives is never migrated: its old keys are refused with the new name (see `_build`). A key added since whose
    default does not reproduce what older runs did (the `ADDED` table: key -> the value an older run meant) takes
    that value when absent, so such a run is never taken for today's.

    Example:
        >>> from nlp_ssl.pretraining import PretrainConfig
        >>> migrate(PretrainConfig, {"train": {"per_device_batch_size": 8, "overwrite": True}})
        {'train': {'per_device_train_batch_size': 8}, 'overwrite': True}
    """
    import copy

    out = copy.deepcopy(data)
    moves: list[tuple[str, Any]] = []  # (absolute key, value)

    def walk(klass: type, node: dict, prefix: str) -> None:
        for old, new in getattr(klass, "RENAMED", {}).items():
            if old in node:
                value = node.pop(old)
                if new.startswith("/"):
                    moves.append((new[1:], value))
                else:
                    node.setdefault(new, value)
        for key, value in getattr(klass, "ADDED", {}).items():
            node.setdefault(key, value)
        hints = typing.get_type_hints(klass)
        for f in dataclasses.fields(klass):
            sub = _dataclass_of(hints.get(f.name))
            if sub is not None and isinstance(node.get(f.name), dict):
                walk(sub, node[f.name], f"{prefix}{f.name}.")

    if isinstance(out, dict):
        walk(cls, out, "")
        for path, value in moves:
            node = out
            *parents, last = path.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node.setdefault(last, value)
    return out


def _check(obj: Any, prefix: str, problems: list[str], failed: set[str], lenient: bool) -> None:
    """Run every nested dataclass's `validate()` (cross-field checks), collecting their messages.

    A message about a key whose value was already rejected is left out (the check saw the default instead).
    With `lenient` (other problems were found), a check that crashes on such a stand-in value is skipped.
    """
    if obj is None or not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        _check(getattr(obj, f.name), f"{prefix}{f.name}.", problems, failed, lenient)
    validate = getattr(obj, "validate", None)
    if not callable(validate):
        return
    try:
        messages = validate() or []
    except Exception:
        if lenient:
            return
        raise
    for msg in messages:
        full = f"{prefix}{msg}"
        if full.split(":", 1)[0] not in failed:
            problems.append(full)


def from_dict(cls: type[T], data: dict, source: str | None = None) -> T:
    """Build and validate `cls` from a plain mapping; raise one ConfigError listing every problem (type errors,
    unknown and missing keys, constructor errors and cross-field checks, all in one pass)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError([f"top level must be a mapping of keys, got {type(data).__name__}"], source)
    failed: set[str] = set()
    obj = _build(cls, data, "", problems, failed)
    _check(obj, "", problems, failed, lenient=bool(problems))
    if problems:
        raise ConfigError(problems, source)
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into (["a", "b", "c"], value), parsing the value as YAML (so `1e-3`, `true`, `[1,2]` work)."""
    if "=" not in text:
        raise ConfigError([f"override {text!r} must look like key=value (e.g. tokenizer.vocab_size=8000)"])
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError([f"override {text!r} has an empty key"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of `data` with each `key=value` override applied (dotted keys reach into mappings)."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error (PyYAML keeps the last
    value silently, so a config edited by appending a key would quietly ignore the earlier one)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (first at line {seen[key] + 1}); "
                    "keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def deep_merge(base: dict, updates: dict) -> dict:
    """A copy of `base` with `updates` applied key by key: nested mappings are merged, other values replaced.

    Example:
        >>> deep_merge({"eval": {"dev": {"path": "d.tsv"}}}, {"eval": {"dev": {"max_examples": 20}}})
        {'eval': {'dev': {'path': 'd.tsv', 'max_examples': 20}}}
    """
    import copy

    out = copy.deepcopy(base)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with a clear error for a missing file or a syntax error (line and column)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"config file not found: {path} (give the path to a YAML file, e.g. configs/quickstart/tokenizer.yaml)"])
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"YAML syntax error{where}: {getattr(e, 'problem', e)}"], str(path)) from None
    except UnicodeDecodeError as e:
        raise ConfigError([f"not UTF-8 text (byte {e.start}): save the config as UTF-8"], str(path)) from None
    return data if data is not None else {}


def load_config(cls: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """Load `cls` from a YAML file plus `key=value` overrides.

    Example:
        >>> cfg = load_config(PrepareConfig, "configs/quickstart/prepare.yaml", ["block_size=256"])  # doctest: +SKIP
    """
    data = apply_overrides(read_config(path), overrides or [])
    return from_dict(cls, data, source=str(path))


def to_dict(obj: Any) -> Any:
    """Plain-data view of a config (for writing the resolved config next to a run's outputs)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False, allow_unicode=True)


# ----------------------------------------------------------------------------------------------------------
# Config bases: `base: ../other.yaml`


BASE_KEY = "base"


def read_config(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """Read a YAML config, starting from its `base:` (a path relative to the file, or a list of them, merged in
    order) when it names one: the file's own keys are merged over its base's key by key (`deep_merge`: nested
    mappings merge, lists and other values replace). Bases may have bases; a cycle is an error naming the files.

    Example:
        >>> # configs/finetune/rte-bert-tiny-cpu.yaml:  base: base/glue-bert-tiny-cpu.yaml, then its task
        >>> data = read_config("configs/finetune/rte-bert-tiny-cpu.yaml")  # doctest: +SKIP
    """
    path = Path(path)
    here = path.resolve()
    data = read_yaml(path)
    if not isinstance(data, dict) or BASE_KEY not in data:
        return data
    data = dict(data)
    bases = data.pop(BASE_KEY)
    bases = bases if isinstance(bases, list) else [bases]
    merged: dict = {}
    for base in bases:
        if not isinstance(base, str) or not base.strip():
            raise ConfigError([f"{BASE_KEY}: a path to a YAML file, relative to this one (e.g. ../base.yaml), got "
                               f"{base!r}"], str(path))
        base_path = path.parent / base
        if base_path.resolve() in (*_chain, here):
            cycle = [str(p) for p in (*_chain, here)] + [str(base_path.resolve())]
            raise ConfigError([f"{BASE_KEY}: the bases form a cycle: {' -> '.join(cycle)}; remove one of these "
                               "`base:` keys"], str(path))
        if not base_path.is_file():
            raise ConfigError([f"{BASE_KEY}: {base} not found (looked for {base_path}; a base path is relative to "
                               "the file that names it)"], str(path))
        merged = deep_merge(merged, read_config(base_path, (*_chain, here)))
    return deep_merge(merged, data)


# ----------------------------------------------------------------------------------------------------------
# Describing a config: every key with its value, default and a one-line description (`--print-config`)


def field_docs(cls: type) -> dict[str, str]:
    """The description of each field of `cls`, from the `Attributes:` section of its docstring (Google style;
    `a, b: text` describes both), continuation lines joined; a field a subclass inherits is described by its
    base's docstring unless the subclass describes it again. The docstrings are the one source of truth.

    Example:
        >>> from nlp_ssl.optimization import ImplConfig
        >>> field_docs(ImplConfig)["num_threads"]
        "CPU threads torch uses (null: torch's default, all cores)."
    """
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # the base's entries first, each subclass's over them
        out.update(_attribute_docs(klass.__dict__.get("__doc__")))
    return out


def _attribute_docs(docstring: str | None) -> dict[str, str]:
    """{name: description} from the `Attributes:` section of one docstring (see `field_docs`)."""
    import inspect
    import re

    doc = inspect.cleandoc(docstring or "")
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    out: dict[str, str] = {}
    current: list[str] = []  # the names the lines being read describe
    group: list[str] = []  # the names of the entry (`a, b: text`), whose bullets `- a: text` describe one each
    for line in lines[start + 1:]:
        if line.strip() and not line.startswith(" "):
            break  # the next section
        m = re.match(r"^ {4}([A-Za-z_][\w]*(?:, *[A-Za-z_][\w]*)*): (.*)$", line)
        bullet = re.match(r"^ {5,}- ([A-Za-z_]\w*): (.*)$", line)
        if m:
            group = current = [n.strip() for n in m.group(1).split(",")]
            for name in current:
                out[name] = m.group(2).strip()
        elif bullet and bullet.group(1) in group:
            current = [bullet.group(1)]
            out[current[0]] = bullet.group(2).strip()
        elif line.strip() and current:
            for name in current:
                out[name] += " " + line.strip()
    return out


def one_line(text: str, width: int = 110) -> str:
    """The first sentence of `text` (abbreviations such as `e.g.` do not end one), cut at `width` characters."""
    import re

    text = " ".join(text.split())
    m = re.search(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)\.(\s|$)", text)
    first = text[: m.start() + 1] if m else text
    return first if len(first) <= width else first[: width - 3].rstrip() + "..."


def _flow(value: Any) -> str:
    """A value as one line of YAML (flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True).strip()
    return text[:-4].strip() if text.endswith("\n...") else text


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _MISSING


def describe(cls: type, obj: Any = None, indent: int = 0, comment_at: int = 44) -> list[str]:
    """YAML lines of every key of `cls`: the value in `obj` (None: the defaults; required keys without one are
    shown as null), and a comment with the key's default and its one-line description (`field_docs`).

    The text is a complete config: saved to a file it loads back to the same config."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    pad = " " * indent
    lines: list[str] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        default = _default_of(f)
        value = getattr(obj, f.name) if obj is not None else (None if default is _MISSING else default)
        desc = one_line(docs.get(f.name, ""))
        sub = _dataclass_of(hints[f.name])
        if sub is not None and value is not None:
            if not desc or desc.startswith("see "):  # `model, train: see their classes`: the class says what it is
                desc = one_line(inspect.cleandoc(sub.__doc__ or "").split("\n\n")[0])
            lines.append(_with_comment(f"{pad}{f.name}:", desc, comment_at))
            lines += describe(sub, value, indent + 2, comment_at)
            continue
        if isinstance(value, dict) and value and all(dataclasses.is_dataclass(v) for v in value.values()):
            lines.append(_with_comment(f"{pad}{f.name}:", f"(default {_flow(to_dict(default))}) {desc}", comment_at))
            for key, item in value.items():
                lines.append(f"{pad}  {_flow(key)}:")
                lines += describe(type(item), item, indent + 4, comment_at)
            continue
        shown = "required" if default is _MISSING else f"default {_flow(to_dict(default))}"
        lines.append(_with_comment(f"{pad}{f.name}: {_flow(to_dict(value))}", f"({shown}) {desc}", comment_at))
        if sub is not None:  # an optional section left null: its keys, for reference
            lines += [f"{pad}#  {line.lstrip()}" if not line.lstrip().startswith("#") else f"{pad}#  {line.lstrip()[1:].lstrip()}"
                      for line in describe(sub, None, 0, comment_at - indent - 3)]
    return lines


def _with_comment(text: str, comment: str, at: int) -> str:
    comment = comment.strip()
    if not comment:
        return text
    return f"{text.ljust(at - 1)} # {comment}" if len(text) < at - 1 else f"{text}  # {comment}"


def print_config_text(cls: type, obj: Any = None, header: str = "") -> str:
    """`describe` as one text, headed by `header` comment lines."""
    head = [f"# {line}" if line else "#" for line in header.splitlines()]
    return "\n".join(head + describe(cls, obj)) + "\n"


def partial_config(cls: type[T], data: dict, source: str = "<config>") -> Any:
    """`cls` from `data` where required keys may be missing (they read as None): every given value is checked as
    `from_dict` does, and any problem other than a missing required key is raised. For showing the defaults of
    a command before a config names what is required (`--print-config` without CONFIG)."""
    problems: list[str] = []
    _build(cls, data, "", problems, set())
    problems = [p for p in problems if not p.endswith(": required key is missing")]
    if problems:
        raise ConfigError(problems, source)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        sub = _dataclass_of(hints[f.name])
        given = data.get(f.name, _MISSING)
        if sub is not None and isinstance(given, dict):
            values[f.name] = partial_config(sub, given, source)
        elif given is not _MISSING:
            values[f.name] = _convert(given, hints[f.name], f.name, [], set())
        else:
            default = _default_of(f)
            values[f.name] = None if default is _MISSING else default
    try:
        return cls(**values)
    except (TypeError, ValueError):  # a constructor that checks its values: a plain record of them instead
        return types.SimpleNamespace(**values)
