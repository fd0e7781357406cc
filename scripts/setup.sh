#!/usr/bin/env bash
# Set up a virtual environment with nlp-ssl and the exact library versions it is tested with.
# Usage: scripts/setup.sh [VENV_DIR]   (default .venv). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: GPU found, installing torch (CUDA build)"
    "${pip[@]}" -c requirements/constraints.txt torch
  else
    # Without a GPU, install the CPU build first; a plain `torch` requirement would pull a multi-GB CUDA build.
    # Our machines serve the CPU build of torch==2.13.0 from local disk; elsewhere set TORCH_INDEX_URL to
    # PyTorch's CPU wheel index.
    echo "setup: no GPU, installing the CPU build of torch"
    "${pip[@]}" torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  fi
fi
"${pip[@]}" -c requirements/constraints.txt -e ".[test]"
echo "setup: done ($("$venv/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "| transformers", transformers.__version__)'))"
