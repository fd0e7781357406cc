"""`macro_f1`: unweighted mean of the per-class F1 scores.

Loads offline: evaluate.load(nlp_ssl.evaluate_metrics.path("macro_f1")). Written from the table in
nlp_ssl/evaluate_metrics/__init__.py by write_modules(); edit the table, not this file.
"""

from nlp_ssl.evaluate_metrics import module_class

MacroF1 = module_class("macro_f1", __name__)
