"""SQuAD v2.0 metrics as nlp-ssl computes them (`nlp_ssl.squad_metrics.squad_v2`, the official script's
definitions: overall, HasAns and NoAns exact/F1, best thresholds), as an `evaluate` metric module that loads
offline from the installed package.

Predictions: `{"id", "prediction_text", "no_answer_probability"}` as for the Hub's `squad_v2` metric, except that
`no_answer_probability` holds nlp-ssl's na_score (null score minus best span score, what `na_scores.json`
records); a question whose na_score is above `no_answer_threshold` (default 0.0) is answered "". Percentages.
"""

import datasets
import evaluate

from nlp_ssl.squad_metrics import squad_v2

_INPUTS = """
Args:
    predictions: list of {"id": str, "prediction_text": str, "no_answer_probability": float (the na_score)}.
    references: list of {"id": str, "answers": {"text": list of str, "answer_start": list of int}}; an
        unanswerable question has no answer text.
    no_answer_threshold: na_scores above it answer "" (default 0.0).
Returns:
    {"exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", "NoAns_f1", "NoAns_total",
     "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"}
"""


class SquadV2(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric", description="SQuAD v2.0 exact match and F1 (official definitions)", citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({
                "predictions": {"id": datasets.Value("string"), "prediction_text": datasets.Value("string"),
                                "no_answer_probability": datasets.Value("float64")},
                "references": {"id": datasets.Value("string"),
                               "answers": datasets.Sequence({"text": datasets.Value("string"),
                                                             "answer_start": datasets.Value("int32")})},
            }),
        )

    def _compute(self, predictions, references, no_answer_threshold: float = 0.0):
        preds = {p["id"]: p["prediction_text"] for p in predictions}
        na = {p["id"]: p["no_answer_probability"] for p in predictions}
        refs = {r["id"]: list(r["answers"]["text"]) for r in references}
        return squad_v2(preds, refs, na, threshold=no_answer_threshold)
