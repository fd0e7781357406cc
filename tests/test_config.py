from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from nlp_ssl.cli import COMMANDS, SCRIPTS, resolve_config
from nlp_ssl.config import apply_overrides, dump_yaml, from_dict, read_config, read_yaml
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
    return sorted(p for p in (REPO / "configs").rglob("*.yaml") if p.parent.name not in ("accelerate", "base"))


def _base_files():
    return sorted((REPO / "configs").rglob("base/*.yaml"))


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


def _keys(d, prefix=""):
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _keys(v, prefix + k + ".")
    return out


@pytest.mark.parametrize("path", _shipped_configs(), ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_every_shipped_config_is_complete_and_valid(path):
    """Each config's first line is the command that runs it; it loads strictly; with its bases it sets every key
    (a config on a base writes only what differs, the base the rest); and `--print-config` shows every key with
    the resolved value: its text loads back to the same config."""
    import yaml

    from nlp_ssl.cli import print_config

    command = _command_of(path)
    assert command in COMMANDS, f"{path}: first line names unknown command {command!r}"
    cfg, _ = resolve_config(command, str(path), [])
    resolved = _keys(yaml.safe_load(dump_yaml(cfg)))
    written = _keys(read_config(path))
    assert resolved <= written, f"{path} (with its bases) leaves keys at their defaults: {sorted(resolved - written)}"
    printed = yaml.safe_load(print_config(command, str(path), []))
    assert printed == yaml.safe_load(dump_yaml(cfg))  # every key, with its resolved value
    assert from_dict(type(cfg), printed) == cfg


@pytest.mark.parametrize("path", _base_files(), ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_every_shipped_base_is_used_and_says_what_it_is(path):
    assert path.read_text().startswith("# Base of "), f"{path}: first line must say what the base is for"
    users = [p for p in _shipped_configs() if (read_yaml(p).get("base") and
                                                (p.parent / read_yaml(p)["base"]).resolve() == path.resolve())]
    assert users, f"{path} is the base of no shipped config"


def test_shipped_configs_use_bases():
    """The GLUE/IMDB fine-tuning family states only what differs from its base (one chain goes two deep)."""
    on_base = [p.name for p in _shipped_configs() if "base" in read_yaml(p)]
    assert {"sst2-bert-tiny-cpu.yaml", "rte-bert-tiny-cpu.yaml", "imdb-bert-tiny-cpu.yaml",
            "sst2-1000-labels-bert-tiny-cpu.yaml"} <= set(on_base)
    few = REPO / "configs/finetune/sst2-1000-labels-bert-tiny-cpu.yaml"
    assert len(few.read_text().splitlines()) < 20 and read_yaml(few)["base"] == "sst2-bert-tiny-cpu.yaml"


# --- bases: `base: ../other.yaml` -----------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_is_relative_to_the_file_and_merges_key_by_key(tmp_path):
    _write(tmp_path / "common" / "root.yaml", "name: root\nlr: 0.1\ninner: {size: 2, kind: a}\npaths: [x, y]\n")
    _write(tmp_path / "common" / "mid.yaml", "base: root.yaml\ninner: {size: 3}\n")
    leaf = _write(tmp_path / "runs" / "leaf.yaml", "base: ../common/mid.yaml\nname: leaf\npaths: [z]\n")
    data = read_config(leaf)
    assert data == {"name": "leaf", "lr": 0.1, "inner": {"size": 3, "kind": "a"}, "paths": ["z"]}  # lists replace
    assert from_dict(Outer, data) == Outer(name="leaf", lr=0.1, paths=["z"], inner=Inner(size=3, kind="a"))


def test_several_bases_merge_in_order(tmp_path):
    _write(tmp_path / "a.yaml", "lr: 0.1\nflag: true\n")
    _write(tmp_path / "b.yaml", "lr: 0.2\n")
    leaf = _write(tmp_path / "c.yaml", "base: [a.yaml, b.yaml]\nname: c\n")
    assert read_config(leaf) == {"lr": 0.2, "flag": True, "name": "c"}


def test_a_cycle_of_bases_is_an_error_naming_the_files(tmp_path):
    a = _write(tmp_path / "a.yaml", "base: b.yaml\nname: a\n")
    b = _write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError) as e:
        read_config(a)
    assert f"base: the bases form a cycle: {a.resolve()} -> {b.resolve()} -> {a.resolve()}" in str(e.value)
    selfish = _write(tmp_path / "self.yaml", "base: self.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        read_config(selfish)


def test_a_missing_or_malformed_base_names_the_file(tmp_path):
    leaf = _write(tmp_path / "leaf.yaml", "base: nope.yaml\nname: x\n")
    with pytest.raises(ConfigError, match=r"base: nope.yaml not found \(looked for .*nope.yaml"):
        read_config(leaf)
    bad = _write(tmp_path / "bad.yaml", "base: 3\n")
    with pytest.raises(ConfigError, match="base: a path to a YAML file"):
        read_config(bad)


def test_cli_reads_bases_and_overrides_apply_last(tmp_path):
    from nlp_ssl.config import to_dict

    base = _write(tmp_path / "base.yaml", "output_dir: out\nmodel: enc\ntrain: {learning_rate: 0.001, max_steps: 5}\n")
    leaf = _write(tmp_path / "leaf.yaml", f"base: {base.name}\ntrain: {{max_steps: 7}}\n")
    cfg, _ = resolve_config("finetune", str(leaf), ["train.learning_rate=3e-4"])
    d = to_dict(cfg)
    assert (d["output_dir"], d["model"], d["train"]["max_steps"], d["train"]["learning_rate"]) == ("out", "enc", 7, 3e-4)


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs_load_with_accelerate(path):
    from accelerate.commands.config.config_args import ClusterConfig

    assert path.read_text().startswith("# accelerate launch --config_file configs/accelerate/" + path.name)
    c = ClusterConfig.from_yaml_file(str(path))
    assert c.num_processes >= 1 and c.distributed_type is not None


# --- one vocabulary across commands: old spellings are refused with the new name --------------------------

OLD_KEYS = [  # (command, raw config, the old key as written, the key to write instead)
    ("pretrain", {"output_dir": "o", "data": "d", "train": {"per_device_batch_size": 8}},
     "train.per_device_batch_size", "train.per_device_train_batch_size"),
    ("pretrain", {"output_dir": "o", "data": "d", "train": {"num_epochs": 2}}, "train.num_epochs", "train.num_train_epochs"),
    ("pretrain", {"output_dir": "o", "data": "d", "train": {"lr_scheduler": "cosine"}},
     "train.lr_scheduler", "train.lr_scheduler_type"),
    ("pretrain", {"output_dir": "o", "data": "d", "train": {"overwrite": True}}, "train.overwrite", "overwrite"),
    ("pretrain", {"output_dir": "o", "data": "d", "train": {"eval_blocks": 64}}, "train.eval_blocks",
     "train.max_eval_samples"),
    ("finetune", {"output_dir": "o", "model": "m", "train": {"learning_rates": [1e-4, 3e-4]}},
     "train.learning_rates", "train.learning_rate"),
    ("finetune", {"output_dir": "o", "model": "m", "train": {"per_device_batch_size": 8}},
     "train.per_device_batch_size", "train.per_device_train_batch_size"),
    ("finetune", {"output_dir": "o", "model": "m", "train": {"eval_batch_size": 64}},
     "train.eval_batch_size", "train.per_device_eval_batch_size"),
    ("finetune", {"output_dir": "o", "model": "m", "seeds": [1, 2]}, "seeds", "seed"),
    ("finetune", {"output_dir": "o", "model": "m", "task": {"type": "extractive_qa"}, "train": {"num_epochs": 1}},
     "train.num_epochs", "train.num_train_epochs"),
    # speed-only keys live in `impl`, the same section in both commands
    ("pretrain", {"output_dir": "o", "data": "d", "train": {"torch_compile": True}}, "train.torch_compile",
     "impl.torch_compile"),
    ("finetune", {"output_dir": "o", "model": "m", "train": {"torch_compile": True}}, "train.torch_compile",
     "impl.torch_compile"),
    ("finetune", {"output_dir": "o", "model": "m", "train": {"gradient_checkpointing": True}},
     "train.gradient_checkpointing", "impl.gradient_checkpointing"),
    ("finetune", {"output_dir": "o", "model": "m", "task": {"type": "extractive_qa"},
                  "train": {"dataloader_num_workers": 2}}, "train.dataloader_num_workers", "impl.dataloader_num_workers"),
    ("evaluate", {"model": "m", "batch_size": 64}, "batch_size", "per_device_eval_batch_size"),
    ("predict", {"model": "m", "input": {"path": "t.tsv"}, "output": "o.tsv", "batch_size": 64}, "batch_size",
     "per_device_eval_batch_size"),
]


@pytest.mark.parametrize("command, data, old, new", OLD_KEYS, ids=[f"{c}:{o}" for c, _, o, _ in OLD_KEYS])
def test_old_key_spellings_are_refused_naming_the_new_key(command, data, old, new):
    from nlp_ssl.cli import build_config

    with pytest.raises(ConfigError) as e:
        build_config(command, data)
    assert e.value.problems == [f"{old}: renamed; write '{new}' instead (one vocabulary across commands, Hugging "
                                "Face TrainingArguments names where they exist)"]


def test_speed_only_settings_are_one_section_with_the_same_keys_in_both_commands():
    """`impl` (torch_compile, dataloader_num_workers, num_threads, gradient_checkpointing) is the same section,
    with the same keys, defaults and descriptions, in `pretrain`, `finetune` and `finetune` for QA; `train` holds
    none of them."""
    import yaml

    from nlp_ssl.cli import print_config

    texts = {name: print_config(command, None, overrides) for name, command, overrides in (
        ("pretrain", "pretrain", []), ("finetune", "finetune", []),
        ("finetune-qa", "finetune", ["task.type=extractive_qa"]))}
    speed = {"torch_compile", "dataloader_num_workers", "num_threads", "gradient_checkpointing"}
    for name, text in texts.items():
        printed = yaml.safe_load(text)
        assert set(printed["impl"]) == speed, name
        assert not speed & set(printed["train"]), name
    sections = {name: text[text.index("\nimpl:"):].split("\n")[:6] for name, text in texts.items()}
    assert sections["pretrain"] == sections["finetune"] == sections["finetune-qa"]  # the same lines, comments too


def test_the_same_names_in_every_command():
    """Pretraining and fine-tuning share the names of what they share (the Hugging Face TrainingArguments ones)."""
    import dataclasses

    from nlp_ssl.optimization import FinetuneTrainConfig, ImplConfig, OptimizationConfig, TrainConfig
    from nlp_ssl.pretraining import PretrainConfig
    from nlp_ssl.recipes.evaluate import EvaluateConfig
    from nlp_ssl.tasks.classification_finetune import FinetuneConfig
    from nlp_ssl.tasks.qa_finetune import QAFinetuneConfig

    names = lambda cls: {f.name for f in dataclasses.fields(cls)}  # noqa: E731
    shared = {"per_device_train_batch_size", "per_device_eval_batch_size", "learning_rate", "num_train_epochs",
              "max_steps", "lr_scheduler_type", "warmup_ratio", "weight_decay", "max_grad_norm", "logging_steps",
              "report_to", "bf16", "eval_steps"}
    assert shared <= names(OptimizationConfig)  # one definition, both commands' train sections extend it
    assert issubclass(TrainConfig, OptimizationConfig) and issubclass(FinetuneTrainConfig, OptimizationConfig)
    from nlp_ssl.recipes.predict import PredictConfig

    assert "per_device_eval_batch_size" in names(EvaluateConfig) and "per_device_eval_batch_size" in names(PredictConfig)
    for cls in (PretrainConfig, FinetuneConfig, QAFinetuneConfig):
        assert "overwrite" in names(cls) and "output_dir" in names(cls)
    assert "seed" in names(FinetuneConfig) and "seed" in names(QAFinetuneConfig)
    hints = lambda cls: typing.get_type_hints(cls)  # noqa: E731
    assert all(hints(cls)["impl"] is ImplConfig for cls in (PretrainConfig, FinetuneConfig, QAFinetuneConfig))
    assert all("max_eval_samples" in names(c) for c in (TrainConfig, EvaluateConfig, QAFinetuneConfig))


def test_a_rate_or_a_grid_and_a_seed_or_several():
    from nlp_ssl.tasks.classification_finetune import FinetuneConfig

    one = from_dict(FinetuneConfig, {"output_dir": "o", "model": "m", "train": {"learning_rate": 3e-4}, "seed": 2})
    assert (one.train.learning_rate_grid, one.seeds) == ([3e-4], [2])
    grid = from_dict(FinetuneConfig, {"output_dir": "o", "model": "m", "train": {"learning_rate": [1e-4, 1e-3]},
                                      "seed": [1, 2, 3]})
    assert (grid.train.learning_rate_grid, grid.seeds) == ([1e-4, 1e-3], [1, 2, 3])
    with pytest.raises(ConfigError, match=r"seed: one seed, or a list of distinct seeds, got \[1, 1\]"):
        from_dict(FinetuneConfig, {"output_dir": "o", "model": "m", "seed": [1, 1]})


def test_migrate_reads_a_config_written_before_the_renames():
    """A run's config.yaml written with the old names still compares equal to the same config today."""
    from nlp_ssl.config import migrate, to_dict
    from nlp_ssl.pretraining import PretrainConfig

    old = {"output_dir": "o", "data": "d", "train": {"per_device_batch_size": 8, "num_epochs": 2.0,
                                                     "lr_scheduler": "cosine", "overwrite": True}}
    new = from_dict(PretrainConfig, migrate(PretrainConfig, old))
    assert (new.train.per_device_train_batch_size, new.train.num_train_epochs, new.train.lr_scheduler_type,
            new.overwrite) == (8, 2.0, "cosine", True)
    assert old["train"]["overwrite"] is True  # the input is not changed
    assert to_dict(new) == to_dict(from_dict(PretrainConfig, {
        "output_dir": "o", "data": "d", "overwrite": True,
        "train": {"per_device_train_batch_size": 8, "num_train_epochs": 2.0, "lr_scheduler_type": "cosine"}}))


def test_migrate_moves_a_fine_tuning_runs_speed_keys_into_impl():
    """A fine-tuning run written when `train` held the speed keys reads back as today's config (so it is
    recognised as the same run), and migrating does not touch what the user gives (refused, naming `impl`)."""
    from nlp_ssl.config import migrate, to_dict
    from nlp_ssl.tasks.classification_finetune import FinetuneConfig
    from nlp_ssl.tasks.qa_finetune import QAFinetuneConfig

    old = {"output_dir": "o", "model": "m", "train": {"torch_compile": True, "dataloader_num_workers": 2,
                                                      "gradient_checkpointing": True, "learning_rate": 3e-4}}
    for cls, extra in ((FinetuneConfig, {}), (QAFinetuneConfig, {"task": {"type": "extractive_qa"}})):
        new = from_dict(cls, migrate(cls, {**old, **extra}))
        assert (new.impl.torch_compile, new.impl.dataloader_num_workers, new.impl.gradient_checkpointing,
                new.train.learning_rate) == (True, 2, True, 3e-4)
        assert to_dict(new) == to_dict(from_dict(cls, {"output_dir": "o", "model": "m", **extra,
                                                       "train": {"learning_rate": 3e-4},
                                                       "impl": {"torch_compile": True, "dataloader_num_workers": 2,
                                                                "gradient_checkpointing": True}}))


def test_field_docs_of_a_subclass_include_its_bases_and_override_them():
    """The shared keys are documented once (OptimizationConfig); each command's class re-describes only what
    differs, and every key of both still has a description."""
    import dataclasses

    from nlp_ssl.config import field_docs
    from nlp_ssl.optimization import FinetuneTrainConfig, OptimizationConfig, TrainConfig

    for cls in (TrainConfig, FinetuneTrainConfig):
        docs = field_docs(cls)
        assert all(docs.get(f.name) for f in dataclasses.fields(cls)), cls
        assert docs["adam_beta2"] == field_docs(OptimizationConfig)["adam_beta2"] == "AdamW settings."
    assert field_docs(TrainConfig)["per_device_train_batch_size"].startswith("blocks per device")
    assert field_docs(FinetuneTrainConfig)["per_device_train_batch_size"].startswith("training examples (QA: windows)")


def test_field_docs_read_the_attributes_section_with_groups_and_bullets():
    from nlp_ssl.config import field_docs, one_line
    from nlp_ssl.optimization import TrainConfig

    @dataclass
    class Doc:
        """A class.

        Attributes:
            a, b: shared text,
                continued.
            c, d: how long; one of:
                - c: seconds, e.g. 3.
                  Then more.
                - d: steps.
            e: last one.

        Example:
            e: not an attribute.
        """

        a: int = 0

    assert field_docs(Doc) == {"a": "shared text, continued.", "b": "shared text, continued.",
                               "c": "seconds, e.g. 3. Then more.", "d": "steps.", "e": "last one."}
    assert one_line("seconds, e.g. 3. Then more.") == "seconds, e.g. 3."
    assert one_line(field_docs(TrainConfig)["max_steps"]) == "optimizer steps (-1: not set); the schedule runs over these steps."
