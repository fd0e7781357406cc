"""Recipes: thin wiring of components into one run each (`setup -> main`), one module per CLI command.

Each module exposes its command's config dataclass (defined in a component) and `main(cfg, data_dir) -> dict`,
which reads setup -> train -> validate -> save as calls into components. Nothing imports a recipe but the CLI
(`nlp_ssl.cli.run(command, config_dict)` runs one from code). Modules import torch,
transformers and datasets only inside functions, so `nlp-ssl --help` and config errors stay fast.
"""
