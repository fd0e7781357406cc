"""Task presets, loading and checking splits, truncation strategies, few-label sampling, pseudo-labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nlp_ssl.config import from_dict
from nlp_ssl.errors import ConfigError, DataError
from nlp_ssl.tasks.classification import (
    PRESETS, TaskConfig, encode, infer_labels, load_task, resolve_task, select_pseudo_labels, stratified_counts,
    stratified_sample,
)


def task(**kw) -> TaskConfig:
    return resolve_task(from_dict(TaskConfig, kw))


def test_presets_fill_null_keys_and_pick_splits():
    sst2 = task(preset="sst2")
    assert sst2.text_columns == ["sentence"] and sst2.labels == ["negative", "positive"]
    assert (sst2.selection_split, sst2.report_split) == ("selection", "dev")  # chosen on train's share, dev reported
    assert sst2.held_out == {"selection": 0.02}
    assert (task(preset="mrpc").selection_split, task(preset="mrpc").report_split) == ("selection", "test")
    assert task(preset="mnli").report_split == "dev_matched"
    # a config that replaces the held-out splits drops the preset's selection split with them
    mine = task(preset="sst2", held_out={"tune": 0.1})
    assert (mine.selection_split, mine.report_split) == ("dev", "dev")
    stsb = task(preset="stsb")
    assert stsb.type == "regression" and stsb.metrics == ["pearson", "spearmanr"]
    imdb = task(preset="imdb")
    assert (imdb.selection_split, imdb.report_split) == ("dev", "test")
    mnli = task(preset="mnli")
    assert list(mnli.eval) == ["dev_matched", "dev_mismatched"] and mnli.train.hub_name == "nyu-mll/glue"
    assert task(preset="sst2", max_length=64, labels=["neg", "pos"]).labels == ["neg", "pos"]  # given keys win
    assert set(PRESETS) >= {"sst2", "cola", "mrpc", "stsb", "rte", "qnli", "mnli", "qqp", "wnli", "imdb"}


def test_bad_task_configs_are_named():
    with pytest.raises(ConfigError, match="needs 2 column"):
        task(preset="rte", text_columns=["sentence1"])  # a sentence-pair task given one column
    with pytest.raises(ConfigError, match="did you mean 'sst2'"):
        task(preset="sst3")
    with pytest.raises(ConfigError, match="head_tail applies to single texts"):
        task(preset="rte", truncation="head_tail")
    with pytest.raises(ConfigError, match="pearson does not fit a classification task"):
        task(preset="sst2", metrics=["pearson"])
    with pytest.raises(ConfigError, match="no split 'test'"):
        task(preset="sst2", report_split="test")


def test_glue_local_splits_load_with_label_ids(data_dir):
    splits, labels = load_task(task(preset="sst2"), data_dir)
    assert labels == ["negative", "positive"] and len(splits["train"]) + len(splits["selection"]) == 67349
    assert len(splits["dev"]) == 872
    assert set(splits["dev"]["label"]) == {0, 1} and splits["dev"][0]["text_a"].startswith("it 's a charming")
    cola, _ = load_task(task(preset="cola"), data_dir)  # headerless TSV
    assert len(cola["dev"]) == 527 and "text_b" not in cola["dev"].column_names
    stsb, none = load_task(task(preset="stsb"), data_dir)
    assert none is None and isinstance(stsb["dev"][0]["label"], float) and stsb["dev"][0]["text_b"]


def test_mrpc_selection_is_a_seeded_disjoint_tenth_of_train(data_dir):
    splits, _ = load_task(task(preset="mrpc"), data_dir)
    train, dev = splits["train"], splits["selection"]
    assert len(train) + len(dev) == 4076 and 350 < len(dev) < 470 and len(splits["test"]) == 1725
    assert not set(train["idx"]) & set(dev["idx"])
    again, _ = load_task(task(preset="mrpc"), data_dir)
    assert again["selection"]["idx"] == dev["idx"]
    other, _ = load_task(task(preset="mrpc", split_seed=1), data_dir)
    assert other["selection"]["idx"] != dev["idx"]


def test_selection_split_is_disjoint_from_the_training_sample_and_the_reported_split(data_dir):
    """SST-2: the learning rate is chosen on a seeded share of train; the few-label sample is drawn from what
    is left, and the reported split (dev) is another file: nothing chosen touches what is reported."""
    t = task(preset="sst2", train={"path": "glue/sst2/train.tsv", "max_examples": 3000})
    splits, labels = load_task(t, data_dir)
    train, selection, dev = splits["train"], splits["selection"], splits["dev"]
    assert t.selection_split == "selection" and t.report_split == "dev" and t.report_split not in t.held_out
    assert len(train) + len(selection) == 3000 and 30 < len(selection) < 90  # 2%
    sample = train.select(stratified_sample(np.asarray(train["label"]), 100, seed=1, names=labels))
    assert not set(selection["idx"]) & set(train["idx"]) and not set(selection["idx"]) & set(sample["idx"])
    assert len(dev) == 872 and t.eval["dev"].path == "glue/sst2/dev.tsv"


def _tsv(path, rows, header="sentence\tlabel"):
    path.write_text(header + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _custom(train, dev=None, **kw):
    return task(train={"path": train}, eval={"dev": {"path": dev or train}}, text_columns=["sentence"],
                label_column="label", **kw)


def test_custom_files_with_string_labels(tmp_path):
    path = _tsv(tmp_path / "t.tsv", [("good film", "pos"), ("bad film", "neg"), ("fine", "pos")])
    splits, labels = load_task(_custom(path))
    assert labels == ["neg", "pos"] and splits["train"]["label"] == [1, 0, 1]
    assert infer_labels([0, 2, 1]) == ["0", "1", "2"]
    with pytest.raises(DataError, match="not 0..K-1"):
        infer_labels([1, 5])


def test_bad_data_errors_name_file_line_and_fix(tmp_path):
    train = _tsv(tmp_path / "train.tsv", [("good film", "pos"), ("bad film", "neg")])
    bad_label = _tsv(tmp_path / "dev.tsv", [("good", "pos"), ("meh", "maybe")])
    with pytest.raises(DataError, match=r"dev.tsv, line 3: label 'maybe' is not in the declared set \['neg', 'pos'\]"):
        load_task(_custom(train, bad_label))
    out_of_range = _tsv(tmp_path / "ints.tsv", [("good", 1), ("meh", 2)])
    with pytest.raises(DataError, match="ints.tsv, line 3: label 2 is not in the declared set"):
        load_task(_custom(out_of_range, labels=["neg", "pos"]))
    with pytest.raises(DataError, match="not a number, and a regression task needs numeric labels"):
        load_task(_custom(train, type="regression", metrics=["pearson"]))
    nulls = tmp_path / "nulls.csv"
    nulls.write_text("sentence,label\ngood,pos\n,neg\n")
    with pytest.raises(DataError, match=r"nulls.csv, line 3: text column 'sentence' is None"):
        load_task(_custom(str(nulls)))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty"):
        load_task(_custom(str(empty)))


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_dir):
    from nlp_ssl.tokenization import load_tokenizer

    return load_tokenizer(str(tiny_tokenizer_dir))


def test_truncation_keeps_head_tail_or_both(tokenizer):
    from datasets import Dataset

    text = " ".join(f"w{i}" for i in range(60))
    full = tokenizer(text)["input_ids"]
    cls, content, sep = full[0], full[1:-1], full[-1]
    assert len(content) > 20
    ds = Dataset.from_dict({"text_a": [text, "short one"], "label": [1, 0], "idx": [0, 1]})
    base = TaskConfig(train={"path": "unused"}, text_columns=["text"], label_column="label", eval={},
                      held_out={"dev": 0.5}, max_length=12)
    got = {s: encode(ds, tokenizer, resolve_task(dataclasses.replace(base, truncation=s, head_tokens=4)))
           for s in ("head", "tail", "head_tail")}
    assert got["head"][0]["input_ids"] == [cls, *content[:10], sep]
    assert got["tail"][0]["input_ids"] == [cls, *content[-10:], sep]
    assert got["head_tail"][0]["input_ids"] == [cls, *content[:4], *content[-6:], sep]
    for enc in got.values():
        assert enc[0]["length"] == 12 and enc[0]["labels"] == 1
        assert enc[1]["input_ids"] == tokenizer("short one")["input_ids"]  # short texts untouched


def test_stratified_sample_follows_class_shares_and_is_seeded():
    labels = np.array([0] * 900 + [1] * 100)
    idx = stratified_sample(labels, 100, seed=1, names=["a", "b"])
    assert len(idx) == 100 and np.bincount(labels[idx]).tolist() == [90, 10]
    assert (stratified_sample(labels, 100, 1, ["a", "b"]) == idx).all()
    assert not (stratified_sample(labels, 100, 2, ["a", "b"]) == idx).all()
    rare = np.array([0] * 999 + [1])
    assert np.bincount(rare[stratified_sample(rare, 10, 0, ["a", "b"])]).tolist() == [9, 1]  # one each at least
    with pytest.raises(DataError, match=r"class\(es\) \['c'\] have no example"):
        stratified_sample(labels, 10, 0, ["a", "b", "c"])
    with pytest.raises(DataError, match="1 is fewer than the 2 classes"):
        stratified_sample(labels, 1, 0, ["a", "b"])


@pytest.mark.parametrize("counts, n, want", [
    ([90, 5, 5], 3, [1, 1, 1]),      # shares 2.7/0.15/0.15: floors of one overshoot, the big class gives one back
    ([900, 100], 100, [90, 10]),     # exact shares
    ([999, 1], 10, [9, 1]),          # the rare class still gets its one
    ([50, 30, 20], 7, [4, 2, 1]),    # shares 3.5/2.1/1.4: floors 3/2/1, the largest remainder (0.5) gets the 7th
    ([1, 1, 98], 4, [1, 1, 2]),      # shares 0.04/0.04/3.92: floors of one (1/1/3) overshoot by one
    ([3, 3, 3], 9, [3, 3, 3]),       # everything
])
def test_stratified_counts_exact(counts, n, want):
    assert stratified_counts(np.array(counts), n).tolist() == want
    labels = np.repeat(np.arange(len(counts)), counts)
    if n < len(labels):
        idx = stratified_sample(labels, n, 0, [str(c) for c in range(len(counts))])
        assert np.bincount(labels[idx], minlength=len(counts)).tolist() == want and len(set(idx)) == n


def test_pseudo_labels_are_confident_and_class_balanced():
    probs = np.array([[0.95, 0.05], [0.97, 0.03], [0.6, 0.4], [0.1, 0.9], [0.92, 0.08], [0.2, 0.8]])
    idx, lab = select_pseudo_labels(probs, threshold=0.85)
    # class 0 has 3 confident (0.97, 0.95, 0.92), class 1 one (0.9): one each, the most confident
    assert idx.tolist() == [1, 3] and lab.tolist() == [0, 1]
    idx, _ = select_pseudo_labels(probs, threshold=0.75, max_per_class=1)
    assert idx.tolist() == [1, 3]
    assert len(select_pseudo_labels(probs, threshold=0.99)[0]) == 0
