"""Extractive question answering for users: the convenience of transformers' removed
`pipeline("question-answering")`, with the same windowing and post-processing as `nlp-ssl finetune` evaluates.

Example:
    >>> qa = ExtractiveQA("runs/finetune/squad-bert-tiny")                      # doctest: +SKIP
    >>> qa("Where is the tower?", "The Eiffel Tower is in Paris.")               # doctest: +SKIP
    {'answer': 'Paris', 'score': 7.1, 'start': 22, 'end': 27, 'no_answer': False}

A model directory written by `nlp-ssl finetune` records its QA settings (window length, stride, answer length,
SQuAD version, v2 null threshold) in config.json under `extractive_qa`; any other
`AutoModelForQuestionAnswering` directory with a fast tokenizer works with the defaults below.

From the shell: `nlp-ssl answer MODEL --question ... --context ...`, or `--file squad.json --output preds.json`.
As a transformers pipeline: `pipeline(register_pipeline(), model=MODEL_DIR)` (see `register_pipeline`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULTS = {"max_length": 256, "doc_stride": 64, "max_query_length": 64, "max_answer_length": 30, "n_best": 20,
            "version": "v1", "null_threshold": 0.0}


class ExtractiveQA:
    """Answer questions from contexts with a fine-tuned extractive-QA model.

    Args:
        model_dir: a model directory (config.json, weights, tokenizer).
        device: `cpu`, `cuda`, ... (default: cuda when available).
        batch_size: windows per forward pass.
        **settings: override the recorded QA settings (max_length, doc_stride, max_answer_length, n_best,
            version, null_threshold).
    """

    def __init__(self, model_dir: str, device: str | None = None, batch_size: int = 64, **settings: Any):
        import torch
        from transformers import AutoModelForQuestionAnswering

        from nlp_ssl.tasks.models import check_model_dir, check_trained_head
        from nlp_ssl.tasks.qa import check_fast_tokenizer
        from nlp_ssl.tokenization import load_tokenizer

        check_model_dir(model_dir)
        check_trained_head(model_dir, "ForQuestionAnswering", "fine-tune it for extractive QA first "
                           "(`nlp-ssl finetune configs/quickstart/finetune-qa.yaml`) and pass that directory")
        self.tokenizer = load_tokenizer(model_dir)
        check_fast_tokenizer(self.tokenizer)
        self.model = AutoModelForQuestionAnswering.from_pretrained(model_dir)
        self.model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        recorded = getattr(self.model.config, "extractive_qa", None) or {}
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown QA setting(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.settings = {**DEFAULTS, **recorded, **settings}
        self.batch_size = batch_size

    def _task(self):
        from nlp_ssl.tasks.qa import QATaskConfig

        s = self.settings
        return QATaskConfig(max_length=s["max_length"], doc_stride=s["doc_stride"], max_query_length=s["max_query_length"])

    def answer_rows(self, rows: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, float], dict[str, list]]:
        """(answer per id, null - best score per id, n-best per id) for rows with id, question, context."""
        from datasets import Dataset

        from nlp_ssl.tasks.inference import PadCollator, predict
        from nlp_ssl.tasks.qa import eval_features, postprocess

        feats = eval_features(rows, self.tokenizer, self._task())
        ds = Dataset.from_dict({k: feats[k] for k in ("input_ids", "attention_mask", "token_type_ids", "length") if k in feats})
        out, _ = predict(self.model, ds, PadCollator(self.tokenizer, keep=("input_ids", "token_type_ids", "attention_mask")),
                         self.batch_size, ("start_logits", "end_logits"))
        return postprocess(rows, feats, out["start_logits"], out["end_logits"], self.settings["n_best"],
                           self.settings["max_answer_length"])

    def __call__(self, question: str | list[str], context: str | list[str], top_k: int = 1):
        """The answer(s) to one question or a list (each with its context).

        Returns a dict {answer, score, start, end, no_answer} (start/end: character offsets in the context), or a
        list of `top_k` such dicts when top_k > 1; a list of those for list inputs.
        """
        single = isinstance(question, str)
        questions = [question] if single else list(question)
        contexts = [context] if isinstance(context, str) else list(context)
        if len(contexts) != len(questions):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
        for c in contexts:
            if not c or not c.strip():
                raise ValueError("empty context: there is nothing to extract an answer from")
        rows = [{"id": str(i), "question": q, "context": c} for i, (q, c) in enumerate(zip(questions, contexts))]
        _, na_diff, nbest = self.answer_rows(rows)
        results = [format_answers(nbest[r["id"]], na_diff[r["id"]], self.settings, top_k) for r in rows]
        return results[0] if single else results

    def answer_file(self, path: str, data_dir: str | None = None) -> dict[str, str]:
        """Official-format predictions (id -> answer text) for every question of a SQuAD-format file."""
        from nlp_ssl.data.sources import DataSourceConfig
        from nlp_ssl.tasks.qa import final_answers, load_qa_examples

        rows, _ = load_qa_examples(DataSourceConfig(path=path, format="squad"), data_dir, "v2", "skip", training=False)
        answers, na_diff, _ = self.answer_rows(rows)
        return final_answers(answers, na_diff, self.settings["version"], self.settings["null_threshold"])


def format_answers(nbest: list[dict], na_diff: float, settings: dict[str, Any], top_k: int = 1):
    """The user-facing answer(s) of one question: {answer, score, start, end, no_answer}, or a list of top_k.
    For v2 models, "no answer" comes first when the null score beats the best span by more than the threshold."""
    no_answer = settings["version"] == "v2" and na_diff > settings["null_threshold"]
    cands = [{"answer": c["text"], "score": c["score"], "start": c["start"], "end": c["end"], "no_answer": False}
             for c in nbest[:top_k]]
    if no_answer or not cands:
        cands = [{"answer": "", "score": None, "start": None, "end": None, "no_answer": True}] + cands[:top_k - 1]
    return cands[0] if top_k == 1 else cands


PIPELINE_TASK = "extractive-question-answering"


def register_pipeline() -> str:
    """Register `pipeline("extractive-question-answering", model=dir)` with transformers' custom-pipeline registry
    (the same windowing and post-processing as `ExtractiveQA`). Returns the task name.

    Example:
        >>> from transformers import pipeline                                          # doctest: +SKIP
        >>> qa = pipeline(register_pipeline(), model="runs/finetune/squad-bert-tiny")   # doctest: +SKIP
        >>> qa(question="Where is the tower?", context="The Eiffel Tower is in Paris.")  # doctest: +SKIP
    """
    from transformers import AutoModelForQuestionAnswering, Pipeline
    from transformers.pipelines import PIPELINE_REGISTRY

    from nlp_ssl.tasks.qa import QATaskConfig, eval_features, postprocess

    inputs_keys = ("input_ids", "token_type_ids", "attention_mask")

    class ExtractiveQAPipeline(Pipeline):
        """question + context -> {answer, score, start, end, no_answer} (top_k > 1: a list)."""

        def _sanitize_parameters(self, top_k=None, **kwargs):
            return {}, {}, ({"top_k": top_k} if top_k is not None else {})

        def __call__(self, inputs=None, question=None, context=None, **kwargs):
            if inputs is None:
                inputs = {"question": question, "context": context}
            return super().__call__(inputs, **kwargs)

        def settings(self) -> dict[str, Any]:
            return {**DEFAULTS, **(getattr(self.model.config, "extractive_qa", None) or {})}

        def preprocess(self, inputs):
            if not inputs.get("context") or not inputs["context"].strip():
                raise ValueError("empty context: there is nothing to extract an answer from")
            s = self.settings()
            row = {"id": "0", "question": inputs["question"], "context": inputs["context"]}
            feats = eval_features([row], self.tokenizer, QATaskConfig(
                max_length=s["max_length"], doc_stride=s["doc_stride"], max_query_length=s["max_query_length"]))
            batch = self.tokenizer.pad({k: feats[k] for k in inputs_keys if k in feats}, return_tensors="pt")
            return {"model_inputs": dict(batch), "feats": feats, "row": row}

        def _forward(self, inputs):
            out = self.model(**inputs["model_inputs"])
            return {"start": out.start_logits, "end": out.end_logits, "feats": inputs["feats"], "row": inputs["row"]}

        def postprocess(self, outputs, top_k=1):
            s = self.settings()
            _, na_diff, nbest = postprocess([outputs["row"]], outputs["feats"], outputs["start"].float().numpy(),
                                            outputs["end"].float().numpy(), s["n_best"], s["max_answer_length"])
            return format_answers(nbest["0"], na_diff["0"], s, top_k)

    PIPELINE_REGISTRY.register_pipeline(PIPELINE_TASK, pipeline_class=ExtractiveQAPipeline,
                                        pt_model=AutoModelForQuestionAnswering)
    return PIPELINE_TASK


def parser():
    """The argument parser of `nlp-ssl answer` (also read by the docs generator)."""
    import argparse

    ap = argparse.ArgumentParser(prog="nlp-ssl answer", description="Answer questions with an extractive-QA model.")
    ap.add_argument("model", help="model directory (e.g. written by `nlp-ssl finetune` with task.type extractive_qa)")
    ap.add_argument("--question", help="a question")
    ap.add_argument("--context", help="the text to find the answer in")
    ap.add_argument("--file", help="a SQuAD-format JSON file: answer every question in it")
    ap.add_argument("--output", help="with --file: write the predictions (id -> answer) here (default: stdout)")
    ap.add_argument("--top-k", type=int, default=1, help="with --question: answers to show")
    ap.add_argument("--debug", action="store_true", help="show the traceback of every error")
    return ap


def measured_quality(model_dir: str | Path) -> str | None:
    """How good the model measured itself to be, from the metrics.json its fine-tuning wrote: the reported split's
    EM and F1, so every answer is read with the model's real quality in mind. None when nothing was recorded."""
    from nlp_ssl.layout import METRICS_FILE

    try:
        metrics = json.loads((Path(model_dir) / METRICS_FILE).read_text(encoding="utf-8"))
        split = metrics["report_split"]
        scores = metrics["eval"][split]
        f1, em = float(scores["f1"]), float(scores.get("exact_match", scores.get("exact")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    n = scores.get("total")
    return (f"this model's measured quality: {split} F1 {f1:.1f}, exact match {em:.1f}"
            + (f" over {int(n):,} questions" if isinstance(n, (int, float)) else "")
            + f"; about {em:.0f} answers in 100 are exactly right")


def main(argv: list[str] | None = None, debug: bool = False) -> int:
    """`nlp-ssl answer MODEL (--question Q --context C | --file SQUAD.json [--output PRED.json])`."""
    import sys

    from nlp_ssl.guard import run_guarded

    ap = parser()
    args = ap.parse_args(argv)
    if bool(args.file) == bool(args.question or args.context) or (args.question is None) != (args.context is None):
        ap.error("give --question and --context, or --file")
    if args.top_k < 1:
        ap.error(f"--top-k must be at least 1, got {args.top_k}")

    def run():
        if args.output:
            from nlp_ssl.atomic import check_output_file

            check_output_file(args.output, "--output")
            if args.file and Path(args.output).resolve() == Path(args.file).resolve():
                from nlp_ssl.errors import OutputError

                raise OutputError(f"--output: {args.output} is the --file being answered; writing there would "
                                  "replace the questions. Give another file name")
        qa = ExtractiveQA(args.model)
        if args.file:
            preds = qa.answer_file(args.file)
            text = json.dumps(preds, indent=1, ensure_ascii=False) + "\n"
            if args.output:
                from nlp_ssl.atomic import atomic_write_text

                atomic_write_text(args.output, text)
                print(f"{len(preds):,} predictions written to {args.output}")
            else:
                sys.stdout.write(text)
        else:
            try:
                print(json.dumps(qa(args.question, args.context, top_k=args.top_k), indent=1, ensure_ascii=False))
            except ValueError as e:  # an empty context
                from nlp_ssl.errors import DataError

                raise DataError(f"--context: {e}") from None
            quality = measured_quality(args.model)
            if quality:  # on stderr: stdout stays the JSON answer
                print(quality, file=sys.stderr)

    return run_guarded("answer", run, debug or args.debug)
