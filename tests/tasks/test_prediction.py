"""Submission files for unlabelled test sets: GLUE's label spelling, ids from the file, the exact file format."""

from __future__ import annotations

import numpy as np
import pytest

from nlp_ssl.data.sources import DataSourceConfig
from nlp_ssl.errors import DataError
from nlp_ssl.tasks.classification import TaskConfig, resolve_task
from nlp_ssl.tasks.prediction import label_strings, unlabelled_dataset, write_submission


def test_labels_are_spelled_as_glue_expects():
    pred = np.array([1, 0, 1])
    assert label_strings(pred, TaskConfig(preset="sst2"), ["negative", "positive"]) == ["1", "0", "1"]
    assert label_strings(pred, TaskConfig(preset="rte"), ["entailment", "not_entailment"]) == [
        "not_entailment", "entailment", "not_entailment"]
    assert label_strings(pred, TaskConfig(preset="sst2"), ["negative", "positive"], glue=False) == [
        "positive", "negative", "positive"]
    assert label_strings(pred, TaskConfig(labels=["a", "b"]), ["a", "b"]) == ["b", "a", "b"]  # no GLUE preset
    assert label_strings(np.array([3.14159, 0.5]), TaskConfig(type="regression"), None) == ["3.142", "0.500"]


def test_glue_test_files_give_their_own_ids(data_dir):
    sst2 = resolve_task(TaskConfig(preset="sst2"))
    ds, ids = unlabelled_dataset(DataSourceConfig(path="glue/sst2/test.tsv"), sst2, data_dir)
    assert len(ds) == len(ids) == 1821 and ids[:3] == ["0", "1", "2"]
    assert ds[0]["text_a"] == "uneasy mishmash of styles and genres ."
    rte = resolve_task(TaskConfig(preset="rte"))  # pairs; its label column (-1) is ignored, ids from `idx`
    ds, ids = unlabelled_dataset(DataSourceConfig(path="glue/rte/test.tsv", max_examples=5), rte, data_dir)
    assert ids == ["0", "1", "2", "3", "4"] and ds.column_names == ["text_a", "text_b", "label", "idx"]
    with pytest.raises(DataError, match="no id column 'guid'"):
        unlabelled_dataset(DataSourceConfig(path="glue/rte/test.tsv", max_examples=5), rte, data_dir, "guid")


def test_submission_file_format(tmp_path):
    write_submission(tmp_path / "SST-2.tsv", ["0", "1"], ["1", "0"])
    assert (tmp_path / "SST-2.tsv").read_text() == "index\tprediction\n0\t1\n1\t0\n"


def test_ids_come_from_the_files_id_column_not_the_position(tmp_path):
    """GLUE's own test files number from 0 in order, so they cannot tell the file's ids from positions: a file
    whose `index` column is not 0..N-1 can."""
    (tmp_path / "test.tsv").write_text("index\tsentence\n7\ta fine film .\n3\ta dull one .\n")
    sst2 = resolve_task(TaskConfig(preset="sst2"))
    ds, ids = unlabelled_dataset(DataSourceConfig(path=str(tmp_path / "test.tsv")), sst2, None)
    assert ids == ["7", "3"] and ds["text_a"] == ["a fine film .", "a dull one ."]
    (tmp_path / "noid.tsv").write_text("sentence\nx\ny\n")  # no id column: the position from 0
    assert unlabelled_dataset(DataSourceConfig(path=str(tmp_path / "noid.tsv")), sst2, None)[1] == ["0", "1"]
