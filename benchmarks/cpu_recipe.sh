#!/usr/bin/env bash
# Issue 10's CPU recipe, the headline figures in one command (about 3 hours on an idle 2-core machine):
#   pretrain   configs/pretrain/modernbert-tiny-imdb-recipe-cpu.yaml (49.2M tokens, one thread)
#   probes     configs/finetune/recipe/{sst2-1000,imdb-1000,sst2,squad}.yaml for the encoder and for the same
#              architecture from scratch, one thread each, both sides with the same grid and budget.
# Every rate and checkpoint is chosen on a selection split; the reported split is never used to choose.
# Usage: bash benchmarks/cpu_recipe.sh [all|pretrain|scratch|pretrained]     results: runs/finetune/recipe/
# Then: python benchmarks/summarize_recipe.py runs/finetune/recipe
# Needs: configs/tokenizer/wordpiece-wiki-8k.yaml and configs/prepare/imdb-unsup-128.yaml run first.
set -euo pipefail
cd "$(dirname "$0")/.."
NLP="${NLP:-.venv/bin/nlp-ssl}"
WHAT="${1:-all}"
ENC=runs/pretrain/modernbert-tiny-imdb-recipe-cpu
ARCH=runs/arch/modernbert-tiny      # an untrained encoder of the same shape and tokenizer, for init=scratch
OUT=runs/finetune/recipe
export NLP_SSL_DATA_DIR="${NLP_SSL_DATA_DIR:-$(cd .. && pwd)/shared/data}" OMP_NUM_THREADS=1 \
  NLP_SSL_PROGRESS=lines TQDM_DISABLE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1
mkdir -p $OUT
pretrain() { $NLP pretrain configs/pretrain/modernbert-tiny-imdb-recipe-cpu.yaml impl.num_threads=1; }
arch() {
  [ -f $ARCH/nlp_ssl_complete.json ] || $NLP pretrain configs/pretrain/modernbert-tiny-imdb-recipe-cpu.yaml \
    output_dir=$ARCH train.max_tokens=null train.max_steps=1 impl.num_threads=1 "train.report_to=[]"
}
probes() {  # $1: scratch | pretrained
  if [ "$1" = scratch ]; then init=(model=$ARCH init=scratch); else init=(model=$ENC init=pretrained); fi
  for task in sst2-1000 imdb-1000 sst2 squad; do
    $NLP finetune configs/finetune/recipe/$task.yaml "${init[@]}" output_dir=$OUT/$task-$1 > $OUT/$task-$1.log 2>&1
  done
}
case "$WHAT" in
  pretrain) pretrain ;;
  scratch) arch; probes scratch ;;
  pretrained) probes pretrained ;;
  all) arch; pretrain & probes scratch; wait; probes pretrained ;;
  *) echo "usage: $0 [all|pretrain|scratch|pretrained]" >&2; exit 2 ;;
esac
