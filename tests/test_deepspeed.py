"""DeepSpeed is an optional extra (`pip install "nlp-ssl[deepspeed]"`): the shipped ZeRO-2 config passes DeepSpeed's
own config schema where the package is installed, and no module of nlp_ssl imports it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def deepspeed_dict(path: Path, micro_batch: int = 64) -> dict:
    """The DeepSpeed config accelerate builds from an accelerate YAML (`DeepSpeedPlugin`), with the values it
    fills in at run time ("auto") set as one process with `micro_batch` blocks per step would."""
    import yaml
    from accelerate.utils import DeepSpeedPlugin

    c = yaml.safe_load(path.read_text())
    plugin = DeepSpeedPlugin(**c["deepspeed_config"])
    plugin.set_mixed_precision(c["mixed_precision"])
    d = dict(plugin.deepspeed_config)
    d.update(train_micro_batch_size_per_gpu=micro_batch, train_batch_size=micro_batch * d["gradient_accumulation_steps"])
    return d


def test_zero2_config_passes_deepspeeds_schema():
    pytest.importorskip("deepspeed", reason="optional extra: pip install 'nlp-ssl[deepspeed]'")
    from deepspeed.runtime.config import DeepSpeedConfig

    d = deepspeed_dict(REPO / "configs/accelerate/deepspeed-zero2.yaml")
    cfg = DeepSpeedConfig(d)  # DeepSpeed's own parser: pydantic models, unknown keys in a section are errors
    assert cfg.zero_optimization_stage == 2
    assert cfg.bfloat16_config.enabled and cfg.gradient_clipping == 1.0 and cfg.train_batch_size == 64
    # the check can fail: a misspelled key is refused
    d["zero_optimization"] = {**d["zero_optimization"], "stagee": 2}
    with pytest.raises(Exception, match="stagee"):
        DeepSpeedConfig(d)


def test_deepspeed_is_an_optional_extra_pinned_in_the_constraints():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("deepspeed") for r in project["optional-dependencies"]["deepspeed"])
    assert not any(r.startswith("deepspeed") for r in project["dependencies"])
    assert re.search(r"^deepspeed==\S+$", (REPO / "requirements/constraints.txt").read_text(), re.M)


def test_no_module_of_nlp_ssl_imports_deepspeed():
    """accelerate brings DeepSpeed in when its config asks for it; our code never imports it, so every command
    runs without the extra (with it installed, transformers' Trainer imports it by itself)."""
    found = []
    for path in sorted((REPO / "nlp_ssl").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(REPO)}:{node.lineno}" for n in names if n.split(".")[0] == "deepspeed"]
        if re.search(r"import_module\(\s*['\"]deepspeed", path.read_text()):
            found.append(str(path.relative_to(REPO)))
    assert found == []
