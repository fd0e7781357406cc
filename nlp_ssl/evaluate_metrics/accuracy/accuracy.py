"""`accuracy` as nlp-ssl computes it (share of predictions equal to the label), as an `evaluate` metric module.

It loads offline from the installed package: `evaluate.load(nlp_ssl.evaluate_metrics.path("accuracy"))`, and returns
exactly `nlp_ssl.metrics.accuracy` (the same function is called; inputs are kept as int64 so nothing is rounded).
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
    {"accuracy": float}
"""


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric", description="share of predictions equal to the label", citation="", inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("int64"),
                                        "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        return {"accuracy": METRICS["accuracy"](np.asarray(predictions), np.asarray(references))}
