"""SQuAD metrics on hand-made cases whose values are computed by hand (official v1.1 / v2.0 definitions)."""

from __future__ import annotations

import pytest

from nlp_ssl.squad_metrics import exact_match, f1_score, normalize_answer, squad_v1, squad_v2


def test_normalisation_drops_case_punctuation_articles_and_extra_space():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an apple, a pear and THE fig") == "apple pear and fig"
    assert normalize_answer("theatre") == "theatre"  # only whole-word articles go


def test_em_and_f1_by_hand():
    assert exact_match("the Eiffel Tower", "Eiffel Tower.") == 1.0
    # pred tokens: eiffel tower paris (3); gold: eiffel tower (2); common 2: P 2/3, R 1 -> F1 0.8
    assert f1_score("Eiffel Tower, Paris", "the Eiffel Tower") == pytest.approx(0.8)
    assert f1_score("", "") == 1.0 and f1_score("x", "") == 0.0  # v2 empty-answer rule


def test_squad_v1_takes_the_best_reference_and_averages():
    preds = {"q1": "Denver Broncos", "q2": "Santa Clara, California", "q3": "1990"}
    refs = {"q1": ["Denver Broncos", "Broncos"], "q2": ["Levi's Stadium", "Santa Clara"], "q3": ["2016"]}
    m = squad_v1(preds, refs)
    # q1: EM 1, F1 1. q2: EM 0; vs "Santa Clara": pred 3 tokens, gold 2, common 2 -> P 2/3, R 1 -> 0.8. q3: 0, 0.
    assert m["exact_match"] == pytest.approx(100 / 3)
    assert m["f1"] == pytest.approx(100 * (1 + 0.8) / 3)
    assert squad_v1({}, {"q": ["a b"]})["f1"] == 0.0  # missing prediction scores 0


def test_squad_v2_breakdowns_and_thresholds():
    refs = {"a1": ["Paris"], "a2": ["blue whale"], "n1": [], "n2": []}
    preds = {"a1": "Paris", "a2": "whale", "n1": "London", "n2": "cat"}  # best non-null spans
    na = {"a1": -3.0, "a2": 1.0, "n1": 2.0, "n2": -1.0}  # null score - best span score
    m = squad_v2(preds, refs, na, threshold=0.0)
    # threshold 0: a2 and n1 become "" (na > 0). a1 EM 1 F1 1; a2 "" vs answer: 0, 0; n1 "" correct: 1, 1;
    # n2 "cat" for unanswerable: 0, 0.
    assert m["exact"] == pytest.approx(50.0) and m["f1"] == pytest.approx(50.0)
    assert (m["HasAns_exact"], m["HasAns_f1"], m["HasAns_total"]) == (50.0, 50.0, 2)
    assert (m["NoAns_exact"], m["NoAns_total"]) == (50.0, 2)
    # Best threshold (the official scan by increasing na): everything null scores 2 (n1, n2 right); then
    # a1 (-3): +1 -> 3, the best, threshold -3; n2 (-1): answers "cat" -> 2; a2 (1): + F1 2/3 -> 2.67; n1 (2): -> 1.67.
    assert m["best_f1"] == pytest.approx(75.0) and m["best_f1_thresh"] == -3.0
    assert m["best_exact"] == pytest.approx(75.0) and m["best_exact_thresh"] == -3.0
    # without na scores the predictions are scored as they are (the official file format: "" = no answer)
    plain = squad_v2({"a1": "Paris", "a2": "", "n1": "", "n2": "cat"}, refs)
    assert plain["exact"] == 50.0 and "best_f1" not in plain


def test_squad_v2_has_answer_follows_the_official_rule_and_missing_predictions_score_zero():
    # "p" has a reference that normalises to "" (punctuation only): the official script counts it as HasAns
    # (bool(answers)), and its gold answers become [""].
    refs = {"p": ["."], "n": [], "a": ["Paris"]}
    m = squad_v2({"a": "Paris"}, refs)  # p and n have no prediction: both score 0
    assert m["exact"] == pytest.approx(100 / 3) and m["f1"] == pytest.approx(100 / 3)
    assert (m["HasAns_total"], m["HasAns_exact"]) == (2, 50.0)
    assert (m["NoAns_total"], m["NoAns_exact"]) == (1, 0.0)
    full = squad_v2({"p": "", "n": "", "a": "Paris"}, refs)  # "" matches p's normalised gold, as officially
    assert (full["exact"], full["HasAns_exact"], full["NoAns_exact"]) == (100.0, 100.0, 100.0)
    # with na scores: a missing prediction stays wrong whatever the threshold ...
    low = squad_v2({"a": "Paris"}, refs, {"a": -1.0, "p": 5.0, "n": 5.0}, threshold=0.0)
    assert low["exact"] == pytest.approx(100 / 3)
    # ... and the best-threshold scan counts it wrong too: best is answering "a" (1 of 3 right)
    assert low["best_exact"] == pytest.approx(100 / 3) and low["best_exact_thresh"] == -1.0


def test_question_scores_average_to_the_official_figures_and_bootstrap_over_questions():
    from nlp_ssl.metrics import bootstrap_mean
    from nlp_ssl.squad_metrics import question_scores

    refs = {"q1": ["the Eiffel Tower", "Eiffel Tower"], "q2": ["1889"], "q3": ["Gustave Eiffel's company"]}
    preds = {"q1": "Eiffel tower", "q2": "in 1889", "q3": "a company"}
    s = question_scores(preds, refs)
    # q2: 1 of 2 predicted tokens, 1 of 1 gold -> 2/3; q3: "company" (the article dropped) is 1 of 1 predicted and
    # 1 of 3 gold tokens -> 2 * (1 * 1/3) / (1 + 1/3) = 1/2
    assert s == {"exact_match": {"q1": 1.0, "q2": 0.0, "q3": 0.0}, "f1": {"q1": 1.0, "q2": 2 / 3, "q3": 0.5}}
    official = squad_v1(preds, refs)
    f1 = bootstrap_mean([100 * v for v in s["f1"].values()], n_resamples=200, seed=0)
    assert f1.value == pytest.approx(official["f1"]) and 0.0 <= f1.low <= f1.value <= f1.high <= 100.0
    em = bootstrap_mean([100 * v for v in s["exact_match"].values()], n_resamples=200, seed=0)
    assert em.value == pytest.approx(official["exact_match"])

    refs2 = {**refs, "q4": []}  # v2: an unanswerable question answered "" scores 1
    preds2 = {**preds, "q4": ""}
    s2 = question_scores(preds2, refs2, "v2")
    official2 = squad_v2(preds2, refs2)
    assert s2["exact_match"]["q4"] == s2["f1"]["q4"] == 1.0
    assert 100 * sum(s2["f1"].values()) / 4 == pytest.approx(official2["f1"])
    assert 100 * sum(s2["exact_match"].values()) / 4 == pytest.approx(official2["exact"])
