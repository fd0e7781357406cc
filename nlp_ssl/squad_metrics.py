"""SQuAD v1.1 and v2.0 metrics, as the official evaluation scripts define them, offline.

Answers are normalised (lower-case, punctuation removed, the articles a/an/the removed, whitespace
collapsed); exact match and token-overlap F1 take the maximum over the reference answers. For v2.0, an
unanswerable question's only reference is the empty string, and `na_scores` (how strongly the model prefers
"no answer", here null score minus best span score) with a threshold decide which predictions become "";
the best thresholds for EM and F1 are searched as the official script does.

Example:
    >>> squad_v1({"q1": "the Eiffel Tower"}, {"q1": ["Eiffel Tower", "tower"]})
    {'exact_match': 100.0, 'f1': 100.0, 'total': 1}
"""

from __future__ import annotations

import collections
import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, drop articles, collapse whitespace (in the official order)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    """Token-overlap F1 of normalised answers; when either is empty, 1 if both are, else 0 (the v2.0 rule)."""
    pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not pred or not gold:
        return float(pred == gold)
    return _overlap_f1(pred, gold)


def f1_score_v1(prediction: str, truth: str) -> float:
    """The v1.1 script's F1: no special case for empty answers (no common token: 0)."""
    return _overlap_f1(normalize_answer(prediction).split(), normalize_answer(truth).split())


def _overlap_f1(pred: list[str], gold: list[str]) -> float:
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def _best(metric, prediction: str, truths: list[str]) -> float:
    return max(metric(prediction, t) for t in truths)


def question_scores(predictions: dict[str, str], references: dict[str, list[str]],
                    version: str = "v1") -> dict[str, dict[str, float]]:
    """Each question's exact match (0 or 1) and F1 (0 to 1), as the official scripts score it before averaging: 100
    times their mean is `squad_v1`'s exact_match and f1 (v1), or `squad_v2`'s exact and f1 scored without na_scores
    (v2: `predictions` are the answers given, "" for no answer). What bootstrap intervals over questions resample.

    Example:
        >>> question_scores({"q1": "Eiffel tower", "q2": "in 1889"}, {"q1": ["the Eiffel Tower"], "q2": ["1889"]})
        {'exact_match': {'q1': 1.0, 'q2': 0.0}, 'f1': {'q1': 1.0, 'q2': 0.6666666666666666}}
    """
    if version == "v2":
        exact, f1 = _raw_v2(predictions, references)
        return {"exact_match": exact, "f1": f1}
    if version != "v1":
        raise ValueError(f"SQuAD version {version!r}; use v1 or v2")
    exact, f1 = {}, {}
    for qid, truths in references.items():
        if not truths:
            raise ValueError(f"question {qid} has no reference answer; SQuAD v1.1 questions are all answerable")
        pred = predictions.get(qid, "")
        exact[qid] = _best(exact_match, pred, truths)
        f1[qid] = _best(f1_score_v1, pred, truths)
    return {"exact_match": exact, "f1": f1}


def prediction_rows(predictions: dict[str, str], references: dict[str, list[str]]) -> list[dict]:
    """The rows a QA run saves as predictions-<split>.jsonl: each question's answer given (after the null threshold)
    with its reference answers, so `nlp-ssl report` can score every question again (`question_scores`) and
    bootstrap over questions without the data.

    Example:
        >>> prediction_rows({"q1": "1889"}, {"q1": ["1889", "in 1889"]})
        [{'id': 'q1', 'prediction': '1889', 'answers': ['1889', 'in 1889']}]
    """
    return [{"id": qid, "prediction": predictions.get(qid, ""), "answers": list(truths)}
            for qid, truths in references.items()]


def squad_v1(predictions: dict[str, str], references: dict[str, list[str]]) -> dict[str, float]:
    """SQuAD v1.1: mean EM and F1 (x100) over the reference questions; a missing prediction scores 0."""
    if not references:
        raise ValueError("no reference questions to score")
    scores = question_scores(predictions, references, "v1")
    n = len(references)
    return {"exact_match": 100 * sum(scores["exact_match"].values()) / n, "f1": 100 * sum(scores["f1"].values()) / n,
            "total": n}


def _raw_v2(predictions: dict[str, str], references: dict[str, list[str]]):
    """Per-question EM and F1 against the references (official `get_raw_scores`); a missing prediction scores 0."""
    exact, f1 = {}, {}
    for qid, truths in references.items():
        if qid not in predictions:  # the official script skips it (and then fails); we count it wrong
            exact[qid] = f1[qid] = 0.0
            continue
        gold = [t for t in truths if normalize_answer(t)] or [""]
        pred = predictions[qid]
        exact[qid] = _best(exact_match, pred, gold)
        f1[qid] = _best(f1_score, pred, gold)
    return exact, f1


def _apply_threshold(raw: dict[str, float], na_scores: dict[str, float], has_ans: dict[str, bool], threshold: float,
                     predicted: set[str]):
    """A question whose na_score is above `threshold` is answered "" (scores 1 when unanswerable, else 0)."""
    return {qid: float(not has_ans[qid]) if qid in predicted and na_scores.get(qid, 0.0) > threshold else s
            for qid, s in raw.items()}


def _best_threshold(predictions, raw, na_scores, has_ans) -> tuple[float, float]:
    """The threshold on na_scores that maximises the score, scanning questions by increasing na_score (official)."""
    # everything predicted "no answer": the unanswerable questions that have a prediction are right
    score = best = float(sum(not has_ans[q] for q in raw if q in predictions))
    best_thresh = 0.0
    for qid in sorted(na_scores, key=na_scores.get):
        if qid not in raw or qid not in predictions:
            continue
        if has_ans[qid]:
            score += raw[qid]
        elif predictions[qid]:
            score -= 1
        if score > best:
            best, best_thresh = score, na_scores[qid]
    return 100.0 * best / len(raw), best_thresh


def squad_v2(predictions: dict[str, str], references: dict[str, list[str]], na_scores: dict[str, float] | None = None,
             threshold: float = 0.0) -> dict[str, float]:
    """SQuAD v2.0: EM/F1 overall and for answerable (HasAns) and unanswerable (NoAns) questions, plus the best
    thresholds. `predictions` are the best non-null answers ("" = no answer); a question whose na_score is above
    `threshold` is answered "" (without na_scores, predictions are taken as they are).

    A question has an answer when its reference list is not empty (the official `bool(answers)`, even when the
    answers normalise to ""); a question without a prediction scores 0 whatever its references."""
    if not references:
        raise ValueError("no reference questions to score")
    has_ans = {qid: bool(truths) for qid, truths in references.items()}  # official: bool(qa["answers"])
    exact_raw, f1_raw = _raw_v2(predictions, references)
    na = na_scores or {}
    predicted = set(predictions)
    exact = _apply_threshold(exact_raw, na, has_ans, threshold, predicted)
    f1 = _apply_threshold(f1_raw, na, has_ans, threshold, predicted)
    out: dict[str, float] = {"exact": 100 * sum(exact.values()) / len(exact), "f1": 100 * sum(f1.values()) / len(f1),
                             "total": len(exact)}
    for name, keep in (("HasAns", True), ("NoAns", False)):
        ids = [q for q in references if has_ans[q] == keep]
        if ids:
            out[f"{name}_exact"] = 100 * sum(exact[q] for q in ids) / len(ids)
            out[f"{name}_f1"] = 100 * sum(f1[q] for q in ids) / len(ids)
            out[f"{name}_total"] = len(ids)
    if na_scores is not None:
        out["best_exact"], out["best_exact_thresh"] = _best_threshold(predictions, exact_raw, na, has_ans)
        out["best_f1"], out["best_f1_thresh"] = _best_threshold(predictions, f1_raw, na, has_ans)
    return out
