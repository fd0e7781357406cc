"""`squad_v1`: SQuAD v1.1 exact match and F1 in % (official definitions).

Loads offline: evaluate.load(nlp_ssl.evaluate_metrics.path("squad_v1")). Written from the table in
nlp_ssl/evaluate_metrics/__init__.py by write_modules(); edit the table, not this file.
"""

from nlp_ssl.evaluate_metrics import module_class

SquadV1 = module_class("squad_v1", __name__)
