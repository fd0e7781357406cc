"""`matthews_correlation` as nlp-ssl computes it (Matthews correlation coefficient (CoLA); 0 when a column is constant), as an `evaluate` metric module.

It loads offline from the installed package: `evaluate.load(nlp_ssl.evaluate_metrics.path("matthews_correlation"))`, and returns
exactly `nlp_ssl.metrics.matthews_correlation` (the same function is called; inputs are kept as int64 so nothing is rounded).
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
    {"matthews_correlation": float}
"""


class MatthewsCorrelation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric", description="Matthews correlation coefficient (CoLA); 0 when a column is constant", citation="", inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("int64"),
                                        "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        return {"matthews_correlation": METRICS["matthews_correlation"](np.asarray(predictions), np.asarray(references))}
