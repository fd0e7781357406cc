"""`nlp-ssl <command> CONFIG [key=value ...]`: a table of commands, each a recipe module with a config class.

Recipe modules are imported only for the command that runs, and they import torch/transformers/datasets
lazily, so `nlp-ssl --help` and config errors answer at once.

Errors a user can cause (`nlp_ssl.errors`) print as one paragraph, `nlp-ssl COMMAND: KIND: message`, and exit
with their class's code (config 3, data 4, output 5, model/tokenizer 6, training 7); `--debug` adds the
traceback. Anything else is a bug: printed with its traceback, exit code 70 (`nlp_ssl.guard.run_guarded`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, Callable

from nlp_ssl.guard import EXIT_BROKEN_PIPE, run_guarded  # noqa: F401  (EXIT_BROKEN_PIPE: re-exported)

# command -> (recipe module, config class, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train-tokenizer": ("nlp_ssl.recipes.train_tokenizer", "TrainTokenizerConfig",
                        "train a WordPiece/BPE/byte-level BPE/Unigram tokenizer on a text source"),
    "prepare": ("nlp_ssl.recipes.prepare", "PrepareConfig",
                "tokenize a corpus, pack it into fixed-length blocks, split off validation, cache on disk"),
    "pretrain": ("nlp_ssl.recipes.pretrain", "PretrainConfig",
                 "pretrain an encoder on prepared blocks (masked LM or next-token LM) with the HF Trainer"),
    "finetune": ("nlp_ssl.recipes.finetune", "FinetuneConfig",
                 "fine-tune an encoder (pretrained or from scratch) for classification, regression or extractive QA"),
    "evaluate": ("nlp_ssl.recipes.evaluate", "EvaluateConfig",
                 "score a fine-tuned model on its task's evaluation splits (CONFIG may be the model directory)"),
    "predict": ("nlp_ssl.recipes.predict", "PredictConfig",
                "write a GLUE-style submission file for an unlabelled file (CONFIG may be the model directory: "
                "nlp-ssl predict MODEL input.path=FILE output=FILE.tsv)"),
}
# accelerate launch scripts/<name>.py CONFIG runs this command
SCRIPTS = {"pretrain": "pretrain", "finetune_classification": "finetune", "finetune_qa": "finetune"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nlp-ssl",
        description="Self-supervised pretraining of NLP encoders: tokenizer -> corpus -> pretraining -> fine-tuning.",
        epilog="Each command takes a complete YAML config (see configs/) plus key=value overrides, "
               "e.g.  nlp-ssl prepare configs/quickstart/prepare.yaml block_size=256",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of every error")
    parser.add_argument("--version", action="version", version=f"nlp-ssl {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, _, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", help="show the traceback of every error")
        p.add_argument("config", nargs="?", help="YAML config file (optional with --print-config: the defaults)")
        p.add_argument("--print-config", action="store_true",
                       help="print the complete resolved config (CONFIG and overrides applied; without CONFIG the "
                            "defaults): every key with its value, default and a one-line description; run nothing")
        p.add_argument("overrides", nargs="*", metavar="key=value", help="override config keys (dotted for nested)")
        p.add_argument("--data-dir", default=None,
                       help="directory that relative data paths resolve against (default: $NLP_SSL_DATA_DIR)")
        if name == "finetune":
            p.add_argument("--seeds", default=None, metavar="1,2,3",
                           help="run once per seed and report mean and standard deviation (same as seed=[1,2,3])")
    sub.add_parser("push", add_help=False, help="upload a model directory (model, tokenizer, card) to the Hugging Face "
                   "Hub (nlp-ssl push DIR --repo-id USER/NAME [--dry-run]); see nlp-ssl push --help")
    sub.add_parser("report", add_help=False, help="write a markdown report with plots comparing runs "
                   "(nlp-ssl report RUN_DIR [RUN_DIR ...] --output DIR); see nlp-ssl report --help")
    sub.add_parser("answer", add_help=False, help="answer questions with an extractive-QA model "
                   "(nlp-ssl answer MODEL --question Q --context C, or --file SQUAD.json); see nlp-ssl answer --help")
    return parser


def recipe_for(command: str, data: dict) -> tuple[str, str]:
    """(module, class name) of the config class `command` builds from the raw config `data`: the command's own,
    except for `finetune`, whose config class is the one the task registry declares for `task.type`
    (`tasks.registry.spec_for_config`)."""
    module, class_name, _ = COMMANDS[command]
    if command == "finetune":
        from nlp_ssl.tasks.registry import spec_for_config

        config = spec_for_config(data).config_class()
        return config.__module__, config.__name__
    return module, class_name


def build_config(command: str, data: dict, source: str = "<config>") -> tuple[Any, Callable]:
    """The typed config of `command` from plain data (checked), and the recipe function that runs it."""
    from nlp_ssl.config import from_dict

    module_name, class_name = recipe_for(command, data)
    config_class = getattr(importlib.import_module(module_name), class_name)
    recipe = importlib.import_module(COMMANDS[command][0])
    return from_dict(config_class, data, source=source), recipe.main


def resolve_config(command: str, path: str, overrides: list[str]):
    """Read CONFIG (a YAML file; for `evaluate` and `predict` also a model directory), apply overrides, build the config class
    -> (config, main)."""
    import os

    from nlp_ssl.config import apply_overrides, read_config

    if command in ("evaluate", "predict") and os.path.isdir(path):
        data, source = {"model": path}, path
    else:
        data, source = read_config(path), path
    return build_config(command, apply_overrides(data, overrides), str(source))


def version() -> str:
    """The installed version of nlp-ssl (the package's own when it runs from a source tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    from nlp_ssl import __version__

    try:
        found = installed("nlp-ssl")
    except PackageNotFoundError:
        return __version__
    return found if found == __version__ else __version__  # a source tree (PYTHONPATH) ahead of the install


def print_config(command: str, path: str | None, overrides: list[str]) -> str:
    """The text of `nlp-ssl COMMAND --print-config [CONFIG] [key=value ...]`: every key of the command's config,
    with its resolved value (bases, CONFIG and overrides applied and checked; without CONFIG the defaults and the
    overrides, required keys shown as null), its default and a one-line description. Saved to a file (and the
    required keys filled in), it is a complete config."""
    from nlp_ssl.config import apply_overrides, partial_config, print_config_text

    if path is not None:
        cfg, _ = resolve_config(command, path, overrides)
        cls = type(cfg)
    else:
        data = apply_overrides({}, overrides)
        module_name, class_name = recipe_for(command, data)
        cls = getattr(importlib.import_module(module_name), class_name)
        cfg = partial_config(cls, data, source="overrides")
    header = (f"nlp-ssl {command} --print-config {path or ''}".rstrip() + "".join(f" {o}" for o in overrides)
              + f"\nevery key of `nlp-ssl {command}`: `key: value  # (default) description`; "
              + ("bases, overrides and checks applied" if path else "the defaults (and overrides); required keys are "
                 "null here: give them in a config file"))
    return print_config_text(cls, cfg, header)


def run(command: str, data: dict, data_dir: str | None = None) -> dict[str, Any]:
    """Run `command` on a config given as plain data (what benchmarks and scripts call instead of importing a
    recipe); returns the recipe's result (its metrics).

    Example:
        >>> run("prepare", {"output_dir": "runs/blocks", "tokenizer": "runs/tok", "data": {"path": "c.jsonl"}})
    """
    cfg, main_fn = build_config(command, data)
    return main_fn(cfg, data_dir)


def main(argv: list[str] | None = None) -> int:
    from nlp_ssl.progress import quiet_library_bars

    quiet_library_bars()  # not a terminal (CI, a log file): no redrawn bars from datasets or the Hub client
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    if argv[:1] == ["answer"] or argv[:2] == ["--debug", "answer"]:
        from nlp_ssl.answer import main as answer

        return answer([a for a in argv[argv.index("answer") + 1:] if a != "--debug"], debug=debug)
    lead = 1 if argv[:1] == ["--debug"] else 0  # `nlp-ssl --debug push ...` as well as `nlp-ssl push ... --debug`
    if argv[lead:lead + 1] in (["push"], ["report"]):  # commands on run directories, with their own flags
        module = importlib.import_module(f"nlp_ssl.recipes.{argv[lead]}")
        rest = [a for a in argv[lead + 1:] if a != "--debug"]
        return run_guarded(argv[lead], lambda: module.main(rest), debug)
    parser = _parser()
    # overrides may come before or after options such as --data-dir (argparse leaves the later ones over)
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if a.startswith("-") or "=" not in a]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)} (overrides look like key=value)")
    if args.command is None:
        parser.print_help()
        return 2
    from nlp_ssl.data.sources import data_dir_from_env

    overrides = list(args.overrides) + extra
    if getattr(args, "seeds", None):
        overrides.append(f"seed=[{args.seeds}]")

    config = args.config
    if config is not None and "=" in config and not os.path.exists(config):  # `--print-config key=value`: no file
        overrides, config = [config] + overrides, None
    if args.print_config:
        return run_guarded(args.command, lambda: print(print_config(args.command, config, overrides), end=""),
                           debug or args.debug)
    if config is None:
        parser.error(f"{args.command}: a YAML config file is required (see configs/; "
                     f"`nlp-ssl {args.command} --print-config` prints every key with its default)")

    def run_command():
        cfg, run = resolve_config(args.command, config, overrides)
        run(cfg, data_dir_from_env(args.data_dir))

    return run_guarded(args.command, run_command, debug or args.debug)


if __name__ == "__main__":
    sys.exit(main())
