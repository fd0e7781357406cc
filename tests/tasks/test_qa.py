"""Extractive QA: example checks, windows and answer labels, n-best post-processing over windows."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from nlp_ssl.data.sources import DataSourceConfig
from nlp_ssl.errors import ConfigError, DataError
from nlp_ssl.tasks.qa import (
    QATaskConfig, check_fast_tokenizer, eval_features, load_qa_examples, postprocess, resolve_qa_task, score,
    train_features,
)


def squad_file(path, qas, context="The cat sat on the mat in Paris.", version="v1.1"):
    path.write_text(json.dumps({"version": version, "data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": qas}]}]}))
    return DataSourceConfig(path=str(path))


def qa(qid, question, text=None, start=None, impossible=False):
    answers = [] if text is None else [{"text": text, "answer_start": start}]
    return {"id": qid, "question": question, "answers": answers, "is_impossible": impossible}


def test_presets_and_config_checks():
    task = resolve_qa_task(QATaskConfig(preset="squad"))
    assert task.version == "v1" and task.selection_split == "dev" and len(task.train.paths) == 3
    assert resolve_qa_task(QATaskConfig(preset="squad_v2")).version == "v2"
    assert QATaskConfig(max_length=128, doc_stride=100).validate()[0].startswith("doc_stride: 100 leaves no room")
    with pytest.raises(ConfigError, match="no evaluation split"):
        resolve_qa_task(QATaskConfig(train=DataSourceConfig(path="x.json")))


def test_bad_examples_are_counted_fixed_skipped_or_refused(tmp_path):
    src = squad_file(tmp_path / "a.json", [qa("1", "Who sat?", "cat", 4), qa("2", "Where?", "Paris", 3),
                                           qa("3", "On what?", "the mat", 99)])
    rows, rep = load_qa_examples(src, None, "v1", "skip", training=True)
    assert [r["id"] for r in rows] == ["1"] and rep.skipped_bad_answer == 2 and "answer 'Paris'" in rep.first_problems[0]
    rows, rep = load_qa_examples(src, None, "v1", "fix", training=True)
    assert rep.fixed_answer == 2 and [r["answers"]["answer_start"][0] for r in rows] == [4, 26, 15]  # nearest hits
    with pytest.raises(DataError, match="question 2: answer 'Paris' is not at answer_start 3"):
        load_qa_examples(src, None, "v1", "error", training=True)
    rows, _ = load_qa_examples(src, None, "v1", "error", training=False)  # evaluation keeps its references as given
    assert len(rows) == 3


def test_duplicate_ids_unanswerable_in_v1_and_empty_context(tmp_path):
    dup = squad_file(tmp_path / "dup.json", [qa("1", "Who?", "cat", 4), qa("1", "What?", "mat", 19)])
    with pytest.raises(DataError, match="question id '1' occurs twice"):
        load_qa_examples(dup, None, "v1", "skip", training=True)
    v2 = squad_file(tmp_path / "v2.json", [qa("1", "Who?", "cat", 4), qa("2", "Why?", impossible=True)])
    with pytest.raises(DataError, match="question '2' is unanswerable .* set task.version: v2"):
        load_qa_examples(v2, None, "v1", "skip", training=True)
    rows, _ = load_qa_examples(v2, None, "v2", "skip", training=True)
    assert rows[1]["answers"] == {"text": [], "answer_start": []}
    empty = squad_file(tmp_path / "e.json", [qa("1", "Who?")], context=" ")
    with pytest.raises(DataError, match="question '1' has an empty context"):
        load_qa_examples(empty, None, "v2", "skip", training=False)
    with pytest.raises(DataError, match="no usable question"):
        load_qa_examples(empty, None, "v2", "skip", training=True)


def test_slow_tokenizer_is_refused():
    with pytest.raises(ConfigError, match="no offset mapping"):
        check_fast_tokenizer(SimpleNamespace(is_fast=False))


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_dir):
    from nlp_ssl.tokenization import load_tokenizer

    return load_tokenizer(str(tiny_tokenizer_dir))


LONG = " ".join(f"word{i}" for i in range(120)) + " the answer is Kenneth Arrow today ."


@pytest.mark.parametrize("side", ["right", "left"])  # left padding: the context comes first in each window
def test_long_context_windows_label_the_answer_where_it_is(tiny_tokenizer_dir, side):
    from nlp_ssl.tokenization import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_tokenizer_dir))
    tokenizer.padding_side = side
    start = LONG.index("Kenneth Arrow")
    rows = [{"id": "1", "question": "Who?", "context": LONG,
             "answers": {"text": ["Kenneth Arrow"], "answer_start": [start]}}]
    task = QATaskConfig(max_length=64, doc_stride=16, max_query_length=16)
    feats = train_features(rows, tokenizer, task)
    assert len(feats["input_ids"]) > 3 and max(feats["length"]) <= 64
    labelled = [f for f, s in enumerate(feats["start_positions"]) if s != 0]
    assert labelled and labelled[-1] == len(feats["input_ids"]) - 1  # the answer is at the end of the context
    for f in labelled:
        s, e = feats["start_positions"][f], feats["end_positions"][f]
        assert tokenizer.decode(feats["input_ids"][f][s:e + 1]) == "kenneth arrow"  # the tokenizer lower-cases
        question = tokenizer("Who?", add_special_tokens=False)["input_ids"]
        ids = feats["input_ids"][f]
        at = 1 if side == "right" else len(ids) - 1 - len(question)  # [CLS] q [SEP] ctx [SEP] / [CLS] ctx [SEP] q [SEP]
        assert ids[at:at + len(question)] == question
    assert all(feats["start_positions"][f] == feats["end_positions"][f] == 0
               for f in range(len(feats["input_ids"])) if f not in labelled)


def test_postprocess_picks_the_best_valid_span_over_windows(tokenizer):
    rows = [{"id": "q", "question": "Who got it?", "context": LONG, "answers": {"text": [], "answer_start": []}}]
    task = QATaskConfig(max_length=64, doc_stride=16, max_query_length=16)
    feats = eval_features(rows, tokenizer, task)
    n = len(feats["input_ids"])
    start = np.zeros((n, 64), dtype=np.float32)
    end = np.zeros((n, 64), dtype=np.float32)
    last = n - 1
    offs = feats["offset_mapping"][last]
    a = LONG.index("Kenneth Arrow")
    ks = next(k for k, o in enumerate(offs) if o and o[0] == a)  # first and last token of the span
    ke = next(k for k, o in enumerate(offs) if o and o[1] == a + len("Kenneth Arrow"))
    start[last, ks] = end[last, ke] = 5.0
    start[0, 1] = end[0, 2] = 9.0  # inside the question: never an answer
    start[1, 30], end[1, 20] = 8.0, 8.0  # end before start: never an answer
    answers, na, nbest = postprocess(rows, feats, start, end, n_best=5, max_answer_length=10)
    assert answers["q"] == "Kenneth Arrow" and nbest["q"][0]["score"] == 10.0
    assert na["q"] == pytest.approx(0.0 - 10.0)  # null (CLS) score 0 minus best span score
    answers, _, _ = postprocess(rows, feats, start, end, n_best=5, max_answer_length=1)
    assert answers["q"] != "Kenneth Arrow"  # a two-token span is longer than max_answer_length


def _row(qid, *answers):
    return {"id": qid, "context": "", "question": "", "answers": {"text": list(answers), "answer_start": [0] * len(answers)}}


def test_score_on_hand_made_answers():
    rows = [_row("q1", "Eiffel Tower", "tower"), _row("q2", "Paris")]
    m, used = score(rows, {"q1": "the Eiffel Tower", "q2": "Paris France"}, {}, "v1", None)
    # q1: EM 1, F1 1. q2: EM 0; tokens paris france vs paris: P 1/2, R 1 -> F1 2/3.
    assert used is None and m == pytest.approx({"exact_match": 50.0, "f1": 100 * (1 + 2 / 3) / 2, "total": 2})
    rows = [_row("a1", "Paris"), _row("n1")]
    m, used = score(rows, {"a1": "Paris", "n1": "cat"}, {"a1": -2.0, "n1": 3.0}, "v2", None)
    # tuned on F1: all null scores 1 (n1); a1 (na -2) answered: 2, the best -> threshold -2; n1 (3) answered: 1.
    # At -2: a1 keeps "Paris" (na not above -2), n1 becomes "": both right.
    assert used == -2.0 and (m["exact"], m["f1"], m["HasAns_exact"], m["NoAns_exact"]) == (100.0, 100.0, 100.0, 100.0)
    m, _ = score(rows, {"a1": "Paris", "n1": "cat"}, {"a1": -2.0, "n1": 3.0}, "v2", 5.0)  # a fixed threshold: both answered
    assert (m["exact"], m["HasAns_exact"], m["NoAns_exact"]) == (50.0, 100.0, 0.0)
