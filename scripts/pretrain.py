"""Shim for `accelerate launch scripts/pretrain.py CONFIG [key=value ...]` (same as `nlp-ssl pretrain`)."""

import sys

from nlp_ssl.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
