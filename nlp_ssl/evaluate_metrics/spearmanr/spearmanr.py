"""`spearmanr` as nlp-ssl computes it (Spearman rank correlation (STS-B); NaN when either side is constant), as an `evaluate` metric module.

It loads offline from the installed package: `evaluate.load(nlp_ssl.evaluate_metrics.path("spearmanr"))`, and returns
exactly `nlp_ssl.metrics.spearmanr` (the same function is called; inputs are kept as float64 so nothing is rounded).
"""

import datasets
import evaluate
import numpy as np

from nlp_ssl.metrics import METRICS

_INPUTS = """
Args:
    predictions: predicted real-valued scores.
    references: gold real-valued scores.
Returns:
    {"spearmanr": float}
"""


class Spearmanr(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric", description="Spearman rank correlation (STS-B); NaN when either side is constant", citation="", inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("float64")}),
        )

    def _compute(self, predictions, references):
        return {"spearmanr": METRICS["spearmanr"](np.asarray(predictions), np.asarray(references))}
