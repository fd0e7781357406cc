"""Self-training components: config checks and the unlabelled pool."""

from __future__ import annotations

import pytest

from nlp_ssl.config import from_dict
from nlp_ssl.errors import ConfigError, DataError
from nlp_ssl.tasks.classification import TaskConfig, resolve_task
from nlp_ssl.tasks.self_training import SelfTrainingConfig, load_pool


def test_config_checks():
    with pytest.raises(ConfigError) as e:
        from_dict(SelfTrainingConfig, {"rounds": 1, "threshold": 1.5})
    assert "needs an unlabelled source" in str(e.value) and "threshold: a probability in (0, 1)" in str(e.value)


def test_pool_is_encoded_like_the_task_and_empty_text_is_refused(tmp_path, tiny_tokenizer_dir):
    from nlp_ssl.data.sources import DataSourceConfig
    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    task = resolve_task(TaskConfig(preset="sst2", max_length=16))
    pool_file = tmp_path / "pool.jsonl"
    pool_file.write_text('{"text": "a fine film"}\n{"text": "  "}\n{"text": "dull"}\n')
    pool = load_pool(DataSourceConfig(path=str(pool_file)), tok, task, None)
    assert len(pool) == 2 and pool["input_ids"][0] == tok("a fine film")["input_ids"]  # blank text dropped
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"text": " "}\n')
    with pytest.raises(DataError, match="holds no text"):
        load_pool(DataSourceConfig(path=str(empty)), tok, task, None)
