"""`spearmanr`: Spearman rank correlation (STS-B); NaN when either side is constant.

Loads offline: evaluate.load(nlp_ssl.evaluate_metrics.path("spearmanr")). Written from the table in
nlp_ssl/evaluate_metrics/__init__.py by write_modules(); edit the table, not this file.
"""

from nlp_ssl.evaluate_metrics import module_class

Spearmanr = module_class("spearmanr", __name__)
