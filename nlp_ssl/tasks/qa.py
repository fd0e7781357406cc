"""Extractive question answering (SQuAD v1.1 / v2.0): task description, loading and checking examples,
windowed features with offsets, and post-processing of start/end logits into answers.

Preprocessing: each (question, context) is tokenised as a pair, question first or context first as the
tokenizer pads (right padding: question first); a context longer than `max_length` is cut into overlapping
windows `doc_stride` tokens apart. A training window is labelled with the answer's first and last token, or
with the [CLS] position when the answer is not inside it (or the question has none).

Post-processing: for every example, over all of its windows, the `n_best` start and end logits form candidate
spans; spans must lie in the context, end at or after their start, and be at most `max_answer_length` tokens;
the best is `start + end` logit. The null score is the smallest [CLS] score over the windows; for v2.0 the
answer is "" when null score - best span score exceeds the threshold.
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from nlp_ssl.data.sources import DataSourceConfig, column, describe_source, load_source
from nlp_ssl.errors import ConfigError, DataError


@dataclass
class QATaskConfig:
    """An extractive QA task. With `preset`, every key left null takes the preset's value.

    Attributes:
        type: `extractive_qa` (selects this task in `nlp-ssl finetune`).
        preset: `squad` (v1.1: train on SQuADShifts locally or SQuAD by Hub name, score on SQuAD dev) or
            `squad_v2` (score on SQuAD 2.0 dev, with unanswerable questions).
        version: `v1` (every question has an answer) or `v2` (unanswerable questions allowed).
        train: the training source (SQuAD JSON, or a data set with id/context/question/answers columns).
        eval: named evaluation sources.
        max_length: tokens per window (question + context + special tokens).
        doc_stride: overlap, in tokens, between consecutive windows of a long context (as transformers'
            `stride` counts it).
        max_query_length: questions are cut to this many tokens.
        max_answer_length: longest answer span, in tokens.
        n_best: start and end candidates per window.
        null_threshold: v2 only: answer "" when null score - best span score exceeds it; null: the threshold that
            maximises F1 on the selection split (as the official script's best_f1_thresh).
        bad_answers: training examples whose `answer_start` does not point at the answer text: `skip` them
            (counted and reported), `fix` them (use the occurrence of the text nearest to answer_start, skip if
            absent), or stop with an `error`.
        selection_split: split that tunes the v2 threshold and, with train.eval_steps, picks the best weights
            (null: `selection` when selection_fraction is set, else the first eval split).
        selection_fraction: carve the selection split out of the first eval split: this share of its questions
            (chosen by a seeded hash of each question's position, `split_seed`) becomes `selection`, the rest keeps
            the split's name and is reported, so the threshold is never tuned on the reported questions (preset
            squad_v2: 0.5). 0 (or null without a preset): no carving; a threshold tuned on the reported split is
            then labelled `oracle` in metrics.json. (The local v2 training data, SQuADShifts, has no unanswerable
            questions to tune on.)
        split_seed: seed of that carving.
    """

    type: Literal["extractive_qa"] = "extractive_qa"
    preset: str | None = None
    version: Literal["v1", "v2"] | None = None
    train: DataSourceConfig | None = None
    eval: dict[str, DataSourceConfig] | None = None
    max_length: int = 256
    doc_stride: int = 64
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best: int = 20
    null_threshold: float | None = None
    bad_answers: Literal["skip", "fix", "error"] = "skip"
    selection_split: str | None = None
    selection_fraction: float | None = None
    split_seed: int = 0

    def validate(self) -> list[str]:
        problems = []
        if self.preset is not None and self.preset not in QA_PRESETS:
            close = difflib.get_close_matches(self.preset, list(QA_PRESETS), n=1)
            problems.append(f"preset: unknown QA task {self.preset!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                            + f" (known: {', '.join(QA_PRESETS)})")
        if self.doc_stride >= self.max_length - self.max_query_length - 3:
            problems.append(f"doc_stride: {self.doc_stride} leaves no room for new context in a window of "
                            f"{self.max_length} tokens with questions up to {self.max_query_length}; lower it")
        for name in ("max_answer_length", "n_best", "max_query_length"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be at least 1")
        if self.selection_fraction is not None and not 0 <= self.selection_fraction < 1:
            problems.append(f"selection_fraction: a share in [0, 1) (0: no carving), got {self.selection_fraction}")
        return problems


_SHIFTS = ["qa/squadshifts/new_wiki_v1.0.json", "qa/squadshifts/amazon_reviews_v1.0.json", "qa/squadshifts/reddit_v1.0.json"]

QA_PRESETS: dict[str, QATaskConfig] = {
    # No SQuAD v1.1 train set is stored locally: train on SQuADShifts (27,626 questions written with the SQuAD
    # protocol). SQuAD v1.1 train by name is only a fallback on request: task.train.hub_fallback=true, used when
    # none of those files exists.
    "squad": QATaskConfig(
        version="v1",
        train=DataSourceConfig(path=_SHIFTS, hub_name="rajpurkar/squad", split="train"),
        eval={"dev": DataSourceConfig(path="qa/squad/dev-v1.1-half-a.json", hub_name="rajpurkar/squad",
                                      split="validation")}),
    "squad_v2": QATaskConfig(
        version="v2",
        train=DataSourceConfig(path=_SHIFTS, hub_name="rajpurkar/squad_v2", split="train"),
        eval={"dev": DataSourceConfig(path="qa/squad_v2/dev-v2.0-half.json", hub_name="rajpurkar/squad_v2",
                                      split="validation")},
        selection_fraction=0.5),  # the null threshold is tuned on half of the dev questions, the other half reported
}

QA_COLUMNS = ["id", "context", "question", "answers"]


def resolve_qa_task(task: QATaskConfig) -> QATaskConfig:
    filled = task
    if task.preset:
        preset = QA_PRESETS[task.preset]
        filled = dataclasses.replace(task, **{f.name: getattr(preset, f.name) for f in dataclasses.fields(task)
                                              if getattr(task, f.name) is None and getattr(preset, f.name) is not None})
    problems = []
    if filled.train is None:
        problems.append("task.train: no training source; give one, or a preset")
    if not filled.eval:
        problems.append("task.eval: no evaluation split; give one, or a preset")
    carved = is_carved(filled)
    if carved and "selection" in (filled.eval or {}):
        problems.append("task.eval: `selection` is the name of the split carved by selection_fraction; rename that "
                        "source or set selection_fraction: null")
    if carved and filled.selection_split not in (None, "selection"):
        problems.append(f"task.selection_split: with selection_fraction the selection split is `selection` (carved "
                        f"from the first eval split), got {filled.selection_split!r}; set it to null")
    elif not carved and filled.selection_split is not None and filled.selection_split not in (filled.eval or {}):
        problems.append(f"task.selection_split: no split {filled.selection_split!r}; the task has {list(filled.eval or {})}")
    if problems:
        raise ConfigError(problems)
    selection = "selection" if carved else filled.selection_split or next(iter(filled.eval))
    return dataclasses.replace(filled, version=filled.version or "v1", selection_split=selection)


def is_carved(task: QATaskConfig) -> bool:
    """Whether the selection split is carved out of the first eval split (`selection_fraction` above 0)."""
    return bool(task.selection_fraction)


def report_split(task: QATaskConfig) -> str:
    """The reported split of a resolved task: the carved eval split's remainder, else the selection split."""
    return next(iter(task.eval)) if is_carved(task) else task.selection_split


def carve_selection(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(selection rows, the rest): a seeded, order-independent share of the questions (`data.split.hash_uniform`
    of each question's position), disjoint from the rest."""
    from nlp_ssl.data.split import hash_uniform

    u = hash_uniform(np.arange(len(rows)), seed)
    return [r for r, x in zip(rows, u) if x < fraction], [r for r, x in zip(rows, u) if x >= fraction]


# ----------------------------------------------------------------------------------------------------------
# Examples


@dataclass
class ExampleReport:
    """What loading did to the examples of one split."""

    examples: int = 0
    kept: int = 0
    skipped_bad_answer: int = 0
    fixed_answer: int = 0
    skipped_empty_context: int = 0
    first_problems: list[str] = dataclasses.field(default_factory=list)


def _locate(context: str, text: str, start: int) -> int | None:
    """The start of the occurrence of `text` in `context` nearest to `start`, or None."""
    hits, i = [], context.find(text)
    while i != -1:
        hits.append(i)
        i = context.find(text, i + 1)
    return min(hits, key=lambda h: abs(h - start)) if hits else None


def load_qa_examples(src: DataSourceConfig, data_dir: str | None, version: str, policy: str,
                     training: bool) -> tuple[list[dict[str, Any]], ExampleReport]:
    """Rows id, context, question, answers {text, answer_start}, checked.

    Errors (always): duplicate ids, unanswerable questions in v1 mode, an empty context in an evaluation split.
    Training splits: answers whose `answer_start` does not point at their text, and empty contexts, are handled
    by `policy` (skip / fix / error). Only the first answer of a training question is used (as in SQuAD train).
    """
    ds = load_source(src, data_dir, QA_COLUMNS)
    where = describe_source(src, data_dir)
    cols = {c: column(ds, c) for c in QA_COLUMNS}
    impossible = column(ds, "is_impossible") if "is_impossible" in ds.column_names else None
    report = ExampleReport(examples=len(ds))
    seen: set[str] = set()
    rows = []
    for i in range(len(ds)):
        qid, context, question, answers = (cols[c][i] for c in QA_COLUMNS)
        qid = str(qid)
        if qid in seen:
            raise DataError(f"{where}: question id {qid!r} occurs twice; ids must be unique (predictions are keyed by id)")
        seen.add(qid)
        texts, starts = list(answers.get("text") or []), list(answers.get("answer_start") or [])
        unanswerable = bool(impossible[i]) if impossible is not None else not texts
        if unanswerable and version == "v1":
            raise DataError(f"{where}: question {qid!r} is unanswerable (is_impossible, or no answers) but the task is "
                            "SQuAD v1.1 style; set task.version: v2 for data with unanswerable questions")
        if not context or not context.strip():
            if not training:
                raise DataError(f"{where}: question {qid!r} has an empty context; remove it from the evaluation data")
            if policy == "error":
                raise DataError(f"{where}: question {qid!r} has an empty context; remove it, or set "
                                "task.bad_answers: skip")
            report.skipped_empty_context += 1
            continue
        if unanswerable:
            texts, starts = [], []
        elif training:
            text, start = texts[0], int(starts[0])
            if context[start:start + len(text)] != text:
                problem = (f"{qid}: answer {text!r} is not at answer_start {start} "
                           f"(the context there reads {context[start:start + len(text)]!r})")
                if policy == "error":
                    raise DataError(f"{where}: question {problem}; fix the data, or set task.bad_answers: skip or fix")
                found = _locate(context, text, start) if policy == "fix" else None
                if len(report.first_problems) < 5:
                    report.first_problems.append(problem)
                if found is None:
                    report.skipped_bad_answer += 1
                    continue
                report.fixed_answer += 1
                start = found
            texts, starts = [text], [start]
        rows.append({"id": qid, "context": context, "question": question,
                     "answers": {"text": texts, "answer_start": [int(s) for s in starts]}})
    report.kept = len(rows)
    if not rows:
        raise DataError(f"{where}: no usable question ({report.examples} read); see task.bad_answers")
    return rows, report


# ----------------------------------------------------------------------------------------------------------
# Features


def check_fast_tokenizer(tokenizer) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError([f"tokenizer: {type(tokenizer).__name__} gives no offset mapping, which extractive QA needs "
                           "to map answers to tokens; use a fast tokenizer (tokenizer.json, e.g. from "
                           "`nlp-ssl train-tokenizer`)"])


def _tokenize_windows(tokenizer, questions: list[str], contexts: list[str], task: QATaskConfig):
    question_first = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in questions]
    if task.max_query_length:
        cut = tokenizer(questions, add_special_tokens=False, truncation=True, max_length=task.max_query_length,
                        return_offsets_mapping=True)
        questions = [q[: offs[-1][1]] if offs else q for q, offs in zip(questions, cut["offset_mapping"])]
    pair = (questions, contexts) if question_first else (contexts, questions)
    enc = tokenizer(*pair, truncation="only_second" if question_first else "only_first", max_length=task.max_length,
                    stride=task.doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    return enc, (1 if question_first else 0)


def train_features(rows: list[dict], tokenizer, task: QATaskConfig) -> dict[str, list]:
    """Training windows with start/end token labels ([CLS] position when the answer is outside the window)."""
    enc, ctx_id = _tokenize_windows(tokenizer, [r["question"] for r in rows], [r["context"] for r in rows], task)
    starts, ends = [], []
    for f, offsets in enumerate(enc["offset_mapping"]):
        ids = enc["input_ids"][f]
        cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
        row = rows[enc["overflow_to_sample_mapping"][f]]
        seq = enc.sequence_ids(f)
        if not row["answers"]["text"]:
            starts.append(cls), ends.append(cls)
            continue
        a0 = row["answers"]["answer_start"][0]
        a1 = a0 + len(row["answers"]["text"][0])
        first = seq.index(ctx_id)
        last = len(seq) - 1 - seq[::-1].index(ctx_id)
        if not (offsets[first][0] <= a0 and offsets[last][1] >= a1):
            starts.append(cls), ends.append(cls)
            continue
        s = first
        while s <= last and offsets[s][0] <= a0:
            s += 1
        e = last
        while e >= first and offsets[e][1] >= a1:
            e -= 1
        starts.append(s - 1), ends.append(e + 1)
    out = {k: enc[k] for k in ("input_ids", "attention_mask") + (("token_type_ids",) if "token_type_ids" in enc else ())}
    out.update(start_positions=starts, end_positions=ends, length=[len(x) for x in enc["input_ids"]])
    return out


def eval_features(rows: list[dict], tokenizer, task: QATaskConfig) -> dict[str, list]:
    """Evaluation windows with the example each came from and the offsets of its context tokens (None elsewhere)."""
    enc, ctx_id = _tokenize_windows(tokenizer, [r["question"] for r in rows], [r["context"] for r in rows], task)
    offsets = []
    for f, offs in enumerate(enc["offset_mapping"]):
        seq = enc.sequence_ids(f)
        offsets.append([list(o) if seq[k] == ctx_id else None for k, o in enumerate(offs)])
    out = {k: enc[k] for k in ("input_ids", "attention_mask") + (("token_type_ids",) if "token_type_ids" in enc else ())}
    out.update(example_index=list(enc["overflow_to_sample_mapping"]), offset_mapping=offsets,
               cls_index=[ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
                          for ids in enc["input_ids"]],
               length=[len(x) for x in enc["input_ids"]])
    return out


# ----------------------------------------------------------------------------------------------------------
# Post-processing


def postprocess(rows: list[dict], features: dict[str, list], start_logits: np.ndarray, end_logits: np.ndarray,
                n_best: int = 20, max_answer_length: int = 30) -> tuple[dict[str, str], dict[str, float], dict[str, list]]:
    """Best answer per example over all its windows.

    Returns:
        (best non-null answer text per id ("" when no valid span), null score - best span score per id,
         n-best candidates per id: [{text, score, start, end}] with character offsets in the context).
    """
    by_example: dict[int, list[int]] = collections.defaultdict(list)
    for f, ex in enumerate(features["example_index"]):
        by_example[ex].append(f)
    answers, na_diff, nbest = {}, {}, {}
    for ex, row in enumerate(rows):
        null_score = None
        cands = []
        for f in by_example.get(ex, []):
            offsets = features["offset_mapping"][f]
            n = len(offsets)
            s_log, e_log = start_logits[f][:n], end_logits[f][:n]
            cls = features["cls_index"][f]
            score = float(s_log[cls] + e_log[cls])
            null_score = score if null_score is None else min(null_score, score)
            top_s = np.argsort(-s_log, kind="stable")[:n_best]
            top_e = np.argsort(-e_log, kind="stable")[:n_best]
            for s in top_s:
                if offsets[s] is None:
                    continue
                for e in top_e:
                    if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                        continue
                    cands.append((float(s_log[s] + e_log[e]), offsets[s][0], offsets[e][1]))
        cands.sort(key=lambda c: -c[0])
        seen, top = set(), []
        for score, a, b in cands:
            if (a, b) in seen:
                continue
            seen.add((a, b))
            top.append({"text": row["context"][a:b], "score": score, "start": a, "end": b})
            if len(top) == n_best:
                break
        qid = row["id"]
        nbest[qid] = top
        answers[qid] = top[0]["text"] if top else ""
        best = top[0]["score"] if top else -np.inf
        na_diff[qid] = float((null_score if null_score is not None else -np.inf) - best) if top else float("inf")
    return answers, na_diff, nbest


def final_answers(answers: dict[str, str], na_diff: dict[str, float], version: str, threshold: float) -> dict[str, str]:
    """Official-format predictions: id -> answer text ("" = no answer, v2 only)."""
    if version == "v1":
        return dict(answers)
    return {qid: "" if na_diff[qid] > threshold else text for qid, text in answers.items()}


def references(rows: list[dict]) -> dict[str, list[str]]:
    return {r["id"]: list(r["answers"]["text"]) for r in rows}


def score(rows: list[dict], answers: dict[str, str], na_diff: dict[str, float], version: str,
          threshold: float | None) -> tuple[dict[str, float], float | None]:
    """The official metrics of one split, and the v2 threshold used (tuned for F1 here when `threshold` is None)."""
    from nlp_ssl.squad_metrics import squad_v1, squad_v2

    refs = references(rows)
    if version == "v1":
        return squad_v1(answers, refs), None
    finite = {q: (v if np.isfinite(v) else 1e9) for q, v in na_diff.items()}
    if threshold is None:
        threshold = squad_v2(answers, refs, finite)["best_f1_thresh"]
    return squad_v2(answers, refs, finite, threshold), threshold
