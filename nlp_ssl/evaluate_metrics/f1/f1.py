"""`f1`: binary F1 of class 1 (MRPC, QQP).

Loads offline: evaluate.load(nlp_ssl.evaluate_metrics.path("f1")). Written from the table in
nlp_ssl/evaluate_metrics/__init__.py by write_modules(); edit the table, not this file.
"""

from nlp_ssl.evaluate_metrics import module_class

F1 = module_class("f1", __name__)
