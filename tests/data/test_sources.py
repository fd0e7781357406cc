from __future__ import annotations

import gzip
import json
import time

import pytest

from nlp_ssl.data.sources import DataSourceConfig, detect_format, iter_text_batches, load_source, read_squad
from nlp_ssl.errors import DataError


def _texts(ds, column="text"):
    return [t for batch in iter_text_batches(ds, column, batch_size=7) for t in batch]


# --- formats -------------------------------------------------------------------------------------------------

def test_plain_text_one_example_per_line_or_paragraph(tmp_path):
    (tmp_path / "a.txt").write_text("first line\nsecond line\n\nthird after blank\n", encoding="utf-8")
    by_line = load_source(DataSourceConfig(path="a.txt"), str(tmp_path))
    assert _texts(by_line) == ["first line", "second line", "third after blank"]
    by_par = load_source(DataSourceConfig(path="a.txt", sample_by="paragraph"), str(tmp_path))
    assert len(_texts(by_par)) == 2


def test_jsonl_gz_and_json_detection(tmp_path):
    rows = [{"text": "alpha"}, {"text": "beta"}]
    with gzip.open(tmp_path / "r.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "r.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert _texts(load_source(DataSourceConfig(path="r.jsonl.gz"), str(tmp_path))) == ["alpha", "beta"]
    assert detect_format(tmp_path / "r.json") == "jsonl"
    assert _texts(load_source(DataSourceConfig(path="r.json"), str(tmp_path))) == ["alpha", "beta"]


def test_gzipped_text_and_csv(tmp_path):
    with gzip.open(tmp_path / "t.txt.gz", "wt", encoding="utf-8") as f:
        f.write("one\ntwo\n")
    with gzip.open(tmp_path / "c.tsv.gz", "wt", encoding="utf-8") as f:
        f.write("text\tlabel\nthree\t1\n")
    assert _texts(load_source(DataSourceConfig(path="t.txt.gz"), str(tmp_path))) == ["one", "two"]
    assert _texts(load_source(DataSourceConfig(path="c.tsv.gz"), str(tmp_path))) == ["three"]


def test_csv_with_and_without_header_and_parquet(tmp_path):
    (tmp_path / "h.csv").write_text('sentence,label\n"a, quoted one",1\nplain,0\n')
    ds = load_source(DataSourceConfig(path="h.csv", text_column="sentence"), str(tmp_path), columns=["sentence", "label"])
    assert ds["sentence"] == ["a, quoted one", "plain"] and ds["label"] == [1, 0]
    (tmp_path / "n.csv").write_text("x,1\ny,0\n")
    ds = load_source(DataSourceConfig(path="n.csv", header=False, column_names=["text", "label"]), str(tmp_path))
    assert ds["text"] == ["x", "y"]
    ds.to_parquet(str(tmp_path / "p.parquet"))
    assert load_source(DataSourceConfig(path="p.parquet"), str(tmp_path))["text"] == ["x", "y"]


def test_real_glue_tsv_files(data_dir):
    sst2 = load_source(DataSourceConfig(path="glue/sst2/dev.tsv", text_column="sentence"), data_dir, ["sentence", "label"])
    assert len(sst2) == 872 and set(sst2["label"]) == {0, 1}
    cola = load_source(DataSourceConfig(path="glue/cola/dev.tsv", header=False,
                                        column_names=["source", "label", "original_mark", "sentence"]),
                       data_dir, ["sentence", "label"])
    assert len(cola) == 527
    assert cola[0]["sentence"].startswith("The sailors rode the breeze clear of the rocks")


def test_real_squad_v1_and_v2(data_dir):
    v1 = load_source(DataSourceConfig(path="qa/squad/dev-v1.1-half-a.json"), data_dir, ["question", "context", "answers"])
    assert len(v1) == 5397 and not any(v1["is_impossible"])
    first = v1[0]
    start, text = first["answers"]["answer_start"][0], first["answers"]["text"][0]
    assert first["context"][start:start + len(text)] == text
    v2 = read_squad(__import__("pathlib").Path(data_dir) / "qa/squad_v2/dev-v2.0-half.json")
    assert len(v2) == 6078 and sum(r["is_impossible"] for r in v2) == 3168


def test_streaming_matches_in_memory(data_dir):
    src = dict(path="corpus/wikipedia-en-2015/part-00.jsonl.gz", max_examples=30)
    a = _texts(load_source(DataSourceConfig(**src), data_dir))
    b = _texts(load_source(DataSourceConfig(streaming=True, **src), data_dir))
    assert a == b and len(a) == 30


def test_glob_and_list_paths(tmp_path):
    for i in range(3):
        (tmp_path / f"p{i}.txt").write_text(f"doc {i}\n")
    assert _texts(load_source(DataSourceConfig(path="p*.txt"), str(tmp_path))) == ["doc 0", "doc 1", "doc 2"]
    assert _texts(load_source(DataSourceConfig(path=["p2.txt", "p0.txt"]), str(tmp_path))) == ["doc 2", "doc 0"]


def test_home_relative_path_is_found(tmp_path, monkeypatch):
    """`~/corpus.txt` is the user's file (resolve_paths expanded `~`, the missing-file check did not: a file that
    exists was reported missing)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "c.txt").write_text("doc a\ndoc b\n")
    assert _texts(load_source(DataSourceConfig(path="~/c.txt"), "/nonexistent-data-dir")) == ["doc a", "doc b"]
    assert _texts(load_source(DataSourceConfig(path=["~/c*.txt"]), None)) == ["doc a", "doc b"]


# --- bad input ------------------------------------------------------------------------------------------------

def test_missing_file_names_path_and_data_dir_hint(tmp_path):
    with pytest.raises(DataError, match=r"file not found: .*nope\.txt"):
        load_source(DataSourceConfig(path="nope.txt"), str(tmp_path))
    with pytest.raises(DataError, match="--data-dir"):
        load_source(DataSourceConfig(path="surely/not/here.txt"), None)


def test_empty_file(tmp_path):
    (tmp_path / "e.txt").write_bytes(b"")
    with pytest.raises(DataError, match=r"e\.txt: file is empty"):
        load_source(DataSourceConfig(path="e.txt"), str(tmp_path))
    with gzip.open(tmp_path / "e.jsonl.gz", "wb"):
        pass
    with pytest.raises(DataError, match=r"e\.jsonl\.gz: file is empty"):
        load_source(DataSourceConfig(path="e.jsonl.gz"), str(tmp_path))


def test_file_with_no_usable_text(tmp_path):
    (tmp_path / "blank.jsonl").write_text('{"text": ""}\n{"text": "   "}\n{"text": null}\n')
    ds = load_source(DataSourceConfig(path="blank.jsonl"), str(tmp_path))
    with pytest.raises(DataError, match=r"blank\.jsonl: column 'text' holds no usable text"):
        list(iter_text_batches(ds, "text", where=str(tmp_path / "blank.jsonl")))


def test_non_utf8_names_file_and_line_or_is_replaced(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"good line\nanother good\nbad \xff\xfe byte\nlast\n")
    with pytest.raises(DataError, match=r"bad\.txt, line 3: bytes that are not UTF-8.*encoding_errors: replace"):
        load_source(DataSourceConfig(path="bad.txt"), str(tmp_path))
    ds = load_source(DataSourceConfig(path="bad.txt", encoding_errors="replace"), str(tmp_path))
    assert _texts(ds)[2] == "bad \ufffd\ufffd byte"
    with gzip.open(tmp_path / "bad.jsonl.gz", "wb") as f:
        f.write(b'{"text": "ok"}\n' * 5 + b'{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl\.gz, line 6"):
        load_source(DataSourceConfig(path="bad.jsonl.gz"), str(tmp_path))


def test_missing_column_lists_columns_and_suggests(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"txt": "a", "label": 1}\n')
    with pytest.raises(DataError, match=r"c\.jsonl: no column 'text'; it has \['txt', 'label'\]\. Did you mean 'txt'\?"):
        load_source(DataSourceConfig(path="c.jsonl"), str(tmp_path), columns=["text"])


def test_unknown_format(tmp_path):
    (tmp_path / "data.xml").write_text("<doc>hi</doc>")
    with pytest.raises(DataError, match=r"data\.xml: unknown format \(suffix '\.xml'\); set format:"):
        load_source(DataSourceConfig(path="data.xml"), str(tmp_path))


def test_hub_unreachable_fails_fast_with_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused at once
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.monotonic()
    with pytest.raises(DataError, match=r"cannot reach the Hugging Face Hub.*'stanfordnlp/imdb'.*not found.*Point `path:` at local files"):
        load_source(DataSourceConfig(hub_name="stanfordnlp/imdb", path="imdb/missing.jsonl.gz", hub_fallback=True),
                    str(tmp_path))
    assert time.monotonic() - start < 10  # no retry loop (datasets alone retries for ~25 s here)


def test_local_copy_wins_over_hub_name(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    (tmp_path / "l.txt").write_text("local text\n")
    ds = load_source(DataSourceConfig(hub_name="stanfordnlp/imdb", path="l.txt"), str(tmp_path))
    assert _texts(ds) == ["local text"]


def test_missing_local_file_is_an_error_not_a_switch_to_the_hub(monkeypatch, tmp_path):
    """One of several configured files missing (the `squad` preset without one SQuADShifts file) must not train
    on the Hub data set instead."""
    from nlp_ssl.data import sources

    def no_hub(*a, **k):
        raise AssertionError("the Hub was tried")

    monkeypatch.setattr(sources, "_load_hub", no_hub)
    (tmp_path / "a.txt").write_text("local text\n")
    src = DataSourceConfig(hub_name="rajpurkar/squad", path=["a.txt", "b.txt"])
    with pytest.raises(DataError, match=r"file not found: .*b\.txt \(1 of the 2 configured paths\).*hub_fallback: true"):
        load_source(src, str(tmp_path))
    with pytest.raises(DataError, match=r"file not found: .*c\.txt.*hub_fallback: true"):  # all missing, no fallback asked
        load_source(DataSourceConfig(hub_name="rajpurkar/squad", path="c.txt"), str(tmp_path))
    with pytest.raises(DataError, match=r"1 of the 2"):  # fallback asked, but some local files exist: still an error
        load_source(DataSourceConfig(hub_name="rajpurkar/squad", path=["a.txt", "b.txt"], hub_fallback=True), str(tmp_path))
    # asked for, and none of the local files exists: the Hub is used
    monkeypatch.setattr(sources, "_load_hub", lambda src, data_dir: __import__("datasets").Dataset.from_list([{"text": "hub"}]))
    ds = load_source(DataSourceConfig(hub_name="rajpurkar/squad", path="c.txt", hub_fallback=True), str(tmp_path))
    assert _texts(ds) == ["hub"]


def test_config_needs_a_path_or_hub_name():
    from nlp_ssl.config import from_dict
    from nlp_ssl.errors import ConfigError

    with pytest.raises(ConfigError, match="give local files"):
        from_dict(DataSourceConfig, {"split": "train"})
