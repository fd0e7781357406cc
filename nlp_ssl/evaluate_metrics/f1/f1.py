"""`f1` as nlp-ssl computes it (binary F1 of class 1 (MRPC, QQP)), as an `evaluate` metric module.

It loads offline from the installed package: `evaluate.load(nlp_ssl.evaluate_metrics.path("f1"))`, and returns
exactly `nlp_ssl.metrics.f1` (the same function is called; inputs are kept as int64 so nothing is rounded).
"""

import datasets
import evaluate
import numpy as np

from nlp_ssl.metrics import METRICS

_INPUTS = """
Args:
    predictions: predicted class ids.
    references: gold class ids.
Returns:
    {"f1": float}
"""


class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric", description="binary F1 of class 1 (MRPC, QQP)", citation="", inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("int64"),
                                        "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        return {"f1": METRICS["f1"](np.asarray(predictions), np.asarray(references))}
