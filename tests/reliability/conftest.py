"""Fixtures of the reliability suite: a tiny prepared corpus and a tiny pretraining config."""

from __future__ import annotations

import pytest

from nlp_ssl.config import from_dict

TINY = {"arch": "bert", "preset": "tiny", "num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64,
        "dropout": 0.0}


@pytest.fixture(scope="session")
def blocks(tmp_path_factory, tiny_tokenizer_dir, wiki_slice):
    from nlp_ssl.recipes.prepare import PrepareConfig
    from nlp_ssl.recipes.prepare import main as prepare

    out = tmp_path_factory.mktemp("blocks") / "wiki-32"
    prepare(from_dict(PrepareConfig, {"output_dir": str(out), "tokenizer": str(tiny_tokenizer_dir),
                                      "data": {"path": str(wiki_slice), "max_examples": 40}, "block_size": 32,
                                      "validation_fraction": 0.1, "progress": False}))
    return out


@pytest.fixture(scope="session")
def pretrain_dict():
    return _pretrain_dict


def _pretrain_dict(out, blocks, **train) -> dict:
    """A tiny pretraining config (a few CPU-seconds) as plain data."""
    t = {"per_device_train_batch_size": 8, "learning_rate": 3e-3, "max_steps": 6, "eval_steps": 3, "save_steps": 3,
         "save_total_limit": 2, "logging_steps": 1, "max_eval_samples": 16, "report_to": ["none"], "warmup_ratio": 0.0,
         **train}
    return {"output_dir": str(out), "data": str(blocks), "model": dict(TINY), "train": t}
