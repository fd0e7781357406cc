"""`nlp-ssl <command> CONFIG [key=value ...]`: a table of commands, each a recipe module with a config class.

Recipe modules are imported only for the command that runs, and they import torch/transformers/datasets
lazily, so `nlp-ssl --help` and config errors answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable

from nlp_ssl.errors import NlpSslError

# command -> (recipe module, config class, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train-tokenizer": ("nlp_ssl.recipes.train_tokenizer", "TrainTokenizerConfig",
                        "train a WordPiece/BPE/byte-level BPE/Unigram tokenizer on a text source"),
    "prepare": ("nlp_ssl.recipes.prepare", "PrepareConfig",
                "tokenize a corpus, pack it into fixed-length blocks, split off validation, cache on disk"),
    "pretrain": ("nlp_ssl.recipes.pretrain", "PretrainConfig",
                 "pretrain an encoder on prepared blocks (masked LM or next-token LM) with the HF Trainer"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nlp-ssl",
        description="Self-supervised pretraining of NLP encoders: tokenizer -> corpus -> pretraining -> fine-tuning.",
        epilog="Each command takes a complete YAML config (see configs/) plus key=value overrides, "
               "e.g.  nlp-ssl prepare configs/quickstart/prepare.yaml block_size=256",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, _, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("config", help="YAML config file")
        p.add_argument("overrides", nargs="*", metavar="key=value", help="override config keys (dotted for nested)")
        p.add_argument("--data-dir", default=None,
                       help="directory that relative data paths resolve against (default: $NLP_SSL_DATA_DIR)")
    return parser


def load_command(command: str) -> tuple[type, Callable]:
    module_name, class_name, _ = COMMANDS[command]
    module = importlib.import_module(module_name)
    return getattr(module, class_name), module.main


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    from nlp_ssl.config import load_config
    from nlp_ssl.data.sources import data_dir_from_env

    try:
        config_cls, run = load_command(args.command)
        cfg = load_config(config_cls, args.config, args.overrides)
        run(cfg, data_dir_from_env(args.data_dir))
    except NlpSslError as e:
        print(f"nlp-ssl {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"nlp-ssl {args.command}: interrupted; finished outputs are intact, unfinished ones were removed",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
