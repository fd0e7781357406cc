"""`accuracy`: share of predictions equal to the label.

Loads offline: evaluate.load(nlp_ssl.evaluate_metrics.path("accuracy")). Written from the table in
nlp_ssl/evaluate_metrics/__init__.py by write_modules(); edit the table, not this file.
"""

from nlp_ssl.evaluate_metrics import module_class

Accuracy = module_class("accuracy", __name__)
