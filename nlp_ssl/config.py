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
    for key, value in data.items():
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
    data = apply_overrides(read_yaml(path), overrides or [])
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
