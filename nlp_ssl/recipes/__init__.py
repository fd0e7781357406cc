"""Recipes: thin wiring of components into one run each (`setup -> main`), one module per CLI command.

Each module defines its command's config dataclass and `main(cfg, data_dir) -> dict`. Modules import torch,
transformers and datasets only inside functions, so `nlp-ssl --help` and config errors stay fast.
"""
