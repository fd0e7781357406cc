"""SQuAD v1.1 exact match and F1 as nlp-ssl computes them (`nlp_ssl.squad_metrics.squad_v1`, the official
script's definitions), as an `evaluate` metric module that loads offline from the installed package.

Inputs follow the Hub's `squad` metric: predictions `{"id", "prediction_text"}`, references
`{"id", "answers": {"text": [...], "answer_start": [...]}}`. Scores are percentages (0-100).
"""

import datasets
import evaluate

from nlp_ssl.squad_metrics import squad_v1

_INPUTS = """
Args:
    predictions: list of {"id": str, "prediction_text": str}.
    references: list of {"id": str, "answers": {"text": list of str, "answer_start": list of int}}.
Returns:
    {"exact_match": float, "f1": float, "total": int}
"""


class SquadV1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric", description="SQuAD v1.1 exact match and F1 (official definitions)", citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({
                "predictions": {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")},
                "references": {"id": datasets.Value("string"),
                               "answers": datasets.Sequence({"text": datasets.Value("string"),
                                                             "answer_start": datasets.Value("int32")})},
            }),
        )

    def _compute(self, predictions, references):
        preds = {p["id"]: p["prediction_text"] for p in predictions}
        refs = {r["id"]: list(r["answers"]["text"]) for r in references}
        return squad_v1(preds, refs)
