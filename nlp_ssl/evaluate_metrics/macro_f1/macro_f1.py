"""`macro_f1` as nlp-ssl computes it (unweighted mean of the per-class F1 scores), as an `evaluate` metric module.

It loads offline from the installed package: `evaluate.load(nlp_ssl.evaluate_metrics.path("macro_f1"))`, and returns
exactly `nlp_ssl.metrics.macro_f1` (the same function is called; inputs are kept as int64 so nothing is rounded).
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
    {"macro_f1": float}
"""


class MacroF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric", description="unweighted mean of the per-class F1 scores", citation="", inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("int64"),
                                        "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        return {"macro_f1": METRICS["macro_f1"](np.asarray(predictions), np.asarray(references))}
