"""`squad_v2`: SQuAD v2.0 exact match and F1 in %: overall, HasAns, NoAns, best thresholds (official definitions).

Loads offline: evaluate.load(nlp_ssl.evaluate_metrics.path("squad_v2")). Written from the table in
nlp_ssl/evaluate_metrics/__init__.py by write_modules(); edit the table, not this file.
"""

from nlp_ssl.evaluate_metrics import module_class

SquadV2 = module_class("squad_v2", __name__)
