"""`matthews_correlation`: Matthews correlation coefficient (CoLA); 0 when a column is constant.

Loads offline: evaluate.load(nlp_ssl.evaluate_metrics.path("matthews_correlation")). Written from the table in
nlp_ssl/evaluate_metrics/__init__.py by write_modules(); edit the table, not this file.
"""

from nlp_ssl.evaluate_metrics import module_class

MatthewsCorrelation = module_class("matthews_correlation", __name__)
