from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from nlp_ssl.cli import COMMANDS, SCRIPTS, resolve_config
from nlp_ssl.config import apply_overrides, dump_yaml, from_dict, read_yaml
from nlp_ssl.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Inner:
    size: int = 4
    kind: Literal["a", "b"] = "a"

    def validate(self):
        return [] if self.size > 0 else [f"size: must be positive, got {self.size}"]


@dataclass
class Outer:
    name: str
    lr: float = 1e-3
    flag: bool = False
    paths: str | list[str] | None = None
    inner: Inner = field(default_factory=Inner)


def test_builds_nested_typed_config():
    cfg = from_dict(Outer, {"name": "x", "lr": "3e-4", "inner": {"size": 8, "kind": "b"}, "paths": ["a", "b"]})
    assert cfg == Outer(name="x", lr=3e-4, inner=Inner(size=8, kind="b"), paths=["a", "b"])
    assert isinstance(cfg.lr, float)


def test_unknown_key_suggests_nearest_and_all_problems_reported_together():
    with pytest.raises(ConfigError) as e:
        from_dict(Outer, {"nme": "x", "lr": "fast", "flag": "yes", "inner": {"sise": 2, "kind": "c"}})
    msg = str(e.value)
    assert "6 config problem(s)" in msg
    assert "nme: unknown key; did you mean 'name'?" in msg
    assert "inner.sise: unknown key; did you mean 'inner.size'?" in msg
    assert "lr: expected float, got 'fast'" in msg
    assert "flag: expected bool" in msg
    assert "inner.kind: 'c' is not one of 'a', 'b'" in msg
    assert "name: required key is missing" in msg  # "nme" did not count as "name"
    assert len(e.value.problems) == 6


def test_missing_required_key_and_cross_field_validation():
    with pytest.raises(ConfigError, match="name: required key is missing"):
        from_dict(Outer, {})
    with pytest.raises(ConfigError, match=r"inner\.size: must be positive, got 0"):
        from_dict(Outer, {"name": "x", "inner": {"size": 0}})


@dataclass
class Checked:
    """A config whose constructor refuses some values (as a __post_init__ may)."""

    n: int = 1

    def __post_init__(self):
        if self.n == 13:
            raise TypeError("n: 13 is not allowed; pick another number")


@dataclass
class Holder:
    name: str
    lr: float = 1e-3
    checked: Checked = field(default_factory=Checked)
    inner: Inner = field(default_factory=Inner)

    def validate(self):
        return ["lr: must be below 1 when inner.kind is 'b'"] if self.inner.kind == "b" and self.lr >= 1 else []


def test_constructor_errors_type_errors_and_cross_field_checks_all_in_one_pass():
    with pytest.raises(ConfigError) as e:
        from_dict(Holder, {"name": 3.5, "lr": 2, "checked": {"n": 13}, "inner": {"size": 0, "kind": "b", "x": 1}})
    # before: the constructor's TypeError was swallowed and no validate() ran because of the type problems
    assert e.value.problems == [
        "checked: n: 13 is not allowed; pick another number",
        "inner.x: unknown key; valid keys: size, kind",
        "inner.size: must be positive, got 0",
        "lr: must be below 1 when inner.kind is 'b'",
    ]
    with pytest.raises(ConfigError) as e:  # a rejected value is not also blamed by a check that saw its default
        from_dict(Holder, {"name": "x", "lr": "fast", "inner": {"size": "big", "kind": "b"}})
    assert e.value.problems == ["lr: expected float, got 'fast'", "inner.size: expected int, got 'big'"]


def test_int_does_not_accept_bool_or_fraction():
    with pytest.raises(ConfigError, match="inner.size: expected int, got True"):
        from_dict(Outer, {"name": "x", "inner": {"size": True}})
    with pytest.raises(ConfigError, match="inner.size: expected int, got 2.5"):
        from_dict(Outer, {"name": "x", "inner": {"size": 2.5}})


def test_overrides_parse_yaml_values_and_reach_nested_keys():
    data = apply_overrides({"name": "x", "inner": {"size": 1}}, ["inner.size=16", "lr=1e-2", "flag=true", "paths=[a, b]"])
    assert data == {"name": "x", "inner": {"size": 16}, "lr": "1e-2", "flag": True, "paths": ["a", "b"]}
    assert from_dict(Outer, data) == Outer(name="x", lr=0.01, flag=True, paths=["a", "b"], inner=Inner(size=16))
    with pytest.raises(ConfigError, match="must look like key=value"):
        apply_overrides({}, ["inner.size"])


def test_yaml_syntax_error_names_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ninner:\n  size: [1, 2\n")
    with pytest.raises(ConfigError, match=r"(?s)bad.yaml.*line 4, column 1"):
        read_yaml(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        read_yaml(tmp_path / "nope.yaml")


def _shipped_configs():
    return sorted(p for p in (REPO / "configs").rglob("*.yaml") if p.parent.name != "accelerate")


def _command_of(path: Path) -> str:
    """The command a config's first line runs: `# nlp-ssl CMD ...` or `# accelerate launch ... scripts/CMD.py <this file>`."""
    words = path.read_text().splitlines()[0].split()
    assert words[0] == "#", f"{path}: first line must be a comment naming the command that runs it"
    if words[1] == "nlp-ssl":
        return words[2]
    assert words[1:3] == ["accelerate", "launch"], f"{path}: first line must start with 'nlp-ssl' or 'accelerate launch'"
    script = next(w for w in words if w.startswith("scripts/"))
    assert (REPO / script).exists() and words[-1] == str(path.relative_to(REPO)), words
    return SCRIPTS[Path(script).stem]


@pytest.mark.parametrize("path", _shipped_configs(), ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_every_shipped_config_is_complete_and_valid(path):
    """Each config's first line is the command that runs it; it loads strictly and sets every key."""
    command = _command_of(path)
    assert command in COMMANDS, f"{path}: first line names unknown command {command!r}"
    cfg, _ = resolve_config(command, str(path), [])

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= keys(v, prefix + k + ".")
        return out

    import yaml

    resolved = keys(yaml.safe_load(dump_yaml(cfg)))
    written = keys(read_yaml(path))
    assert resolved <= written, f"{path} leaves keys at their defaults: {sorted(resolved - written)}"


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs_load_with_accelerate(path):
    from accelerate.commands.config.config_args import ClusterConfig

    assert path.read_text().startswith("# accelerate launch --config_file configs/accelerate/" + path.name)
    c = ClusterConfig.from_yaml_file(str(path))
    assert c.num_processes >= 1 and c.distributed_type is not None
