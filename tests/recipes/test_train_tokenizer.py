from __future__ import annotations

import json

import pytest

from nlp_ssl.config import from_dict
from nlp_ssl.errors import DataError, NlpSslError
from nlp_ssl.recipes.train_tokenizer import TrainTokenizerConfig, main


def _cfg(tmp_path, data_path, **kw):
    data = {"path": str(data_path), **kw.pop("data", {})}
    return from_dict(TrainTokenizerConfig, {"output_dir": str(tmp_path / "tok"), "data": data,
                                            "tokenizer": {"vocab_size": 1200, **kw.pop("tokenizer", {})},
                                            "held_out_fraction": 0.1, **kw})


def test_trains_on_real_slice_writes_summary_and_run_info(tmp_path, wiki_slice, wiki_docs, monkeypatch):
    import numpy as np

    from nlp_ssl import tokenization
    from nlp_ssl.data.split import held_out_mask

    trained: list[str] = []  # every document the tokenizer trainer was fed
    train_tokenizer = tokenization.train_tokenizer

    def spy(cfg, batches, length=None):
        def record():
            for batch in batches:
                trained.extend(batch)
                yield batch
        lengths.append(length)
        return train_tokenizer(cfg, record(), length)
    lengths: list = []

    monkeypatch.setattr(tokenization, "train_tokenizer", spy)
    result = main(_cfg(tmp_path, wiki_slice))
    out = tmp_path / "tok"
    assert (out / "tokenizer.json").exists() and (out / "config.yaml").exists()
    info = json.loads((out / "run_info.json").read_text())
    assert info["command"] == "train-tokenizer" and info["versions"]["tokenizers"]
    assert "commit" in info["git"]
    summary = json.loads((out / "tokenizer_summary.json").read_text())
    assert summary["vocab_size"] == 1200 and summary == result
    # the documents whose hash falls below 10% are held out, and none of them was trained on
    held = held_out_mask(np.arange(120), 0.1, seed=0)
    assert 0 < held.sum() < 30 and result["held_out_documents"] == held.sum()
    assert trained == [d["text"] for d, h in zip(wiki_docs, held) if not h]
    assert result["training_documents"] + result["held_out_documents"] == 120
    assert lengths == [120]  # the document count, for the progress of `tokenizers` (held-out ones included)
    assert 1.0 < result["tokens_per_word"] < 3.0


def test_second_run_is_a_no_op_and_a_changed_config_needs_overwrite(tmp_path, wiki_slice, capsys):
    main(_cfg(tmp_path, wiki_slice))
    stamp = (tmp_path / "tok" / "tokenizer.json").stat().st_mtime_ns
    main(_cfg(tmp_path, wiki_slice))
    assert "up to date" in capsys.readouterr().out
    assert (tmp_path / "tok" / "tokenizer.json").stat().st_mtime_ns == stamp
    with pytest.raises(NlpSslError, match="already holds something else.*overwrite=true"):
        main(_cfg(tmp_path, wiki_slice, tokenizer={"vocab_size": 1300}))
    main(_cfg(tmp_path, wiki_slice, tokenizer={"vocab_size": 1300}, overwrite=True))
    assert json.loads((tmp_path / "tok" / "tokenizer_summary.json").read_text())["vocab_size"] == 1300


def test_failed_run_leaves_previous_output_intact(tmp_path, wiki_slice):
    main(_cfg(tmp_path, wiki_slice))
    before = (tmp_path / "tok" / "tokenizer.json").read_bytes()
    empty = tmp_path / "blank.jsonl"
    empty.write_text('{"text": ""}\n')
    with pytest.raises(DataError, match="no usable text"):
        main(_cfg(tmp_path, empty, overwrite=True))
    assert (tmp_path / "tok" / "tokenizer.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tok")] == []  # no temp dir left behind
