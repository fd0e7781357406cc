from __future__ import annotations

import json

import numpy as np
import pytest

from nlp_ssl.config import from_dict
from nlp_ssl.errors import ConfigError, DataError, TokenizerError
from nlp_ssl.recipes.prepare import PrepareConfig, main


def _cfg(tmp_path, tok_dir, data_path, name="prep", **kw):
    data = {"path": str(data_path), **kw.pop("data", {})}
    return from_dict(PrepareConfig, {"output_dir": str(tmp_path / name), "tokenizer": str(tok_dir), "data": data,
                                     "block_size": 64, "validation_fraction": 0.1, "progress": False, **kw})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_tokenizer_dir, wiki_slice):
    tmp = tmp_path_factory.mktemp("prepared")
    report = main(_cfg(tmp, tiny_tokenizer_dir, wiki_slice, num_proc=1))  # in-process: the reference for num_proc > 1
    return tmp / "prep", report


def test_blocks_hold_the_whole_token_stream_in_order(prepared, tiny_tokenizer_dir, wiki_docs):
    import datasets
    from transformers import AutoTokenizer

    from nlp_ssl.data.split import held_out_mask

    out, report = prepared
    dd = datasets.load_from_disk(str(out))
    assert set(dd) == {"train", "validation"}
    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    val = held_out_mask(np.arange(len(wiki_docs)), 0.1, seed=0)
    for split, keep in (("train", ~val), ("validation", val)):
        blocks = np.array(dd[split]["input_ids"])  # (n, 64)
        assert blocks.shape == (report[split]["blocks"], 64)
        assert (blocks[:, 0] == tok.cls_token_id).all()
        # Reference: tokenize each document on its own, join with [SEP], cut into 63-token pieces.
        docs = [d["text"] for d, k in zip(wiki_docs, keep) if k]
        stream = np.concatenate([tok(t, add_special_tokens=False)["input_ids"] + [tok.sep_token_id] for t in docs])
        n = len(stream) // 63
        assert np.array_equal(blocks[:, 1:].reshape(-1), stream[: n * 63])
        assert report[split]["dropped_tokens"] == len(stream) - n * 63 < 63
        assert report[split]["documents"] == len(docs) and report[split]["tokens"] == len(stream)
    assert report["total"]["documents"] == 120
    assert 0 < report["validation"]["documents"] < 30


def test_output_is_memory_mapped_and_records_run(prepared):
    import datasets

    out, _ = prepared
    ds = datasets.load_from_disk(str(out))["train"]
    assert ds.cache_files and all(f["filename"].startswith(str(out)) for f in ds.cache_files)
    assert json.loads((out / "run_info.json").read_text())["command"] == "prepare"
    assert "block_size: 64" in (out / "config.yaml").read_text()


def test_second_run_reuses_cache_and_changes_rebuild(tmp_path, tiny_tokenizer_dir, wiki_slice, capsys):
    cfg = _cfg(tmp_path, tiny_tokenizer_dir, wiki_slice, data={"max_examples": 30})
    first = main(cfg)
    arrow = next((tmp_path / "prep" / "train").glob("*.arrow"))
    stamp = arrow.stat().st_mtime_ns
    capsys.readouterr()
    assert main(cfg) == first
    assert "up to date" in capsys.readouterr().out and arrow.stat().st_mtime_ns == stamp
    # speed-only settings share the cache ...
    assert main(_cfg(tmp_path, tiny_tokenizer_dir, wiki_slice, data={"max_examples": 30}, batch_size=7)) == first
    # ... anything that changes the blocks does not
    changed = main(_cfg(tmp_path, tiny_tokenizer_dir, wiki_slice, data={"max_examples": 30}, block_size=32))
    assert changed["cache_key"] != first["cache_key"] and changed["block_size"] == 32
    import datasets

    assert len(datasets.load_from_disk(str(tmp_path / "prep"))["train"][0]["input_ids"]) == 32


def test_processes_batches_and_streaming_do_not_change_the_output(tmp_path, tiny_tokenizer_dir, wiki_slice, prepared):
    import datasets

    out, report = prepared
    ref = datasets.load_from_disk(str(out))
    other = main(_cfg(tmp_path, tiny_tokenizer_dir, wiki_slice, name="p2", num_proc=2, batch_size=13,
                      data={"streaming": True}))
    got = datasets.load_from_disk(str(tmp_path / "p2"))
    for split in ("train", "validation"):
        assert got[split]["input_ids"] == ref[split]["input_ids"]
        assert other[split] == report[split]


def test_block_size_beyond_tokenizer(tmp_path, tiny_tokenizer_dir, wiki_slice):
    with pytest.raises(ConfigError, match=r"block_size: 512 is larger than the tokenizer allows \(model_max_length 256"):
        main(_cfg(tmp_path, tiny_tokenizer_dir, wiki_slice, block_size=512))
    assert not (tmp_path / "prep").exists()


def test_missing_tokenizer_and_too_little_text(tmp_path, tiny_tokenizer_dir):
    (tmp_path / "short.txt").write_text("just a few words\n")
    with pytest.raises(TokenizerError, match="tokenizer not found"):
        main(_cfg(tmp_path, tmp_path / "none", tmp_path / "short.txt"))
    with pytest.raises(DataError, match=r"short\.txt: \d+ tokens make no full block of 64; use more text or a smaller block_size"):
        main(_cfg(tmp_path, tiny_tokenizer_dir, tmp_path / "short.txt", validation_fraction=0.0))
    assert [p.name for p in tmp_path.iterdir()] == ["short.txt"]  # nothing half-written


def test_interrupted_run_keeps_previous_output(tmp_path, tiny_tokenizer_dir, wiki_slice, monkeypatch):
    import datasets

    main(_cfg(tmp_path, tiny_tokenizer_dir, wiki_slice, data={"max_examples": 20}))
    before = datasets.load_from_disk(str(tmp_path / "prep"))["train"]["input_ids"]

    import nlp_ssl.data.prepare as prep

    def crash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(prep._SplitWriter, "close", crash)
    with pytest.raises(KeyboardInterrupt):
        main(_cfg(tmp_path, tiny_tokenizer_dir, wiki_slice, data={"max_examples": 40}))
    assert datasets.load_from_disk(str(tmp_path / "prep"))["train"]["input_ids"] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prep"]


def test_word_starts_follow_the_tokenizers_word_ids(tmp_path, tiny_tokenizer_dir, wiki_slice, wiki_docs):
    import datasets
    from transformers import AutoTokenizer

    main(_cfg(tmp_path, tiny_tokenizer_dir, wiki_slice, word_starts=True, validation_fraction=0.0,
              data={"max_examples": 3}))
    block = datasets.load_from_disk(str(tmp_path / "prep"))["train"][0]
    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    enc = tok(wiki_docs[0]["text"], add_special_tokens=False)
    words = enc.word_ids()[:63]
    expected = [1] + [1] + [int(words[i] != words[i - 1]) for i in range(1, 63)]  # [CLS], first token, rest
    assert block["word_start"] == expected
    assert block["input_ids"][1:] == enc["input_ids"][:63]
    # cross-check with WordPiece spelling: every token but the "##" continuations starts a word
    pieces = tok.convert_ids_to_tokens(enc["input_ids"][:63])
    assert any(t.startswith("##") for t in pieces)
    assert sum(block["word_start"]) == 1 + sum(not t.startswith("##") for t in pieces)
