"""Shim for `accelerate launch scripts/finetune_qa.py CONFIG [key=value ...]` (same as `nlp-ssl finetune` with an
extractive-QA config)."""

import sys

from nlp_ssl.cli import main

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
