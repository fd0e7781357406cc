#!/usr/bin/env bash
# Issue 10's CPU recipe, the headline figures in one command (the measured parts took about 90 minutes of
# pretraining and 2 hours of probes, two or three one-thread jobs at a time on 2 cores; not timed end to end):
#   pretrain   configs/pretrain/modernbert-tiny-imdb-recipe-cpu.yaml (49.2M tokens, one thread)
#   probes     configs/finetune/recipe/{sst2-1000,imdb-1000,sst2,squad,stsb}.yaml for the encoder and for the
#              same architecture from scratch, one thread each, both sides with the same grid and budget;
#              STS-B dev zero-shot (cosine of mean-pooled states, no labels) for the encoder and for the encoder
#              after a SimCSE stage (configs/pretrain/simcse-tiny-cpu.yaml from it, mean pooling, 1,500 steps).
# Every rate and checkpoint is chosen on a selection split; the reported split is never used to choose.
# Usage: bash benchmarks/cpu_recipe.sh [all|pretrain|scratch|pretrained|zero-shot]     results: runs/finetune/recipe/
# Then: python benchmarks/summarize_finetune.py runs/finetune/recipe   (the zero-shot STS-B figures: the .log files)
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
  for task in sst2-1000 imdb-1000 sst2 squad stsb; do
    $NLP finetune configs/finetune/recipe/$task.yaml "${init[@]}" output_dir=$OUT/$task-$1 > $OUT/$task-$1.log 2>&1
  done
}
zero_shot() {
  [ -f $ENC-simcse/nlp_ssl_complete.json ] || $NLP pretrain configs/pretrain/simcse-tiny-cpu.yaml output_dir=$ENC-simcse \
    data=runs/data/imdb-unsup-wp8k-128 model.arch=modernbert model.init_from=$ENC objective.simcse.pooling=mean train.max_time_minutes=null \
    train.max_steps=1500 impl.num_threads=1 > $OUT/simcse.log 2>&1
  # the masked-LM encoder: mean pooling (what its classifier reads), and [CLS]; the SimCSE one: its recorded pooling
  $NLP evaluate $ENC task.type=sts_zero_shot task.pooling=mean > $OUT/sts-zero-shot-mlm-mean.log 2>&1
  $NLP evaluate $ENC task.type=sts_zero_shot task.pooling=cls > $OUT/sts-zero-shot-mlm-cls.log 2>&1
  $NLP evaluate $ENC-simcse task.type=sts_zero_shot > $OUT/sts-zero-shot-simcse.log 2>&1
}
case "$WHAT" in
  pretrain) pretrain ;;
  scratch) arch; probes scratch ;;
  pretrained) probes pretrained ;;
  zero-shot) zero_shot ;;
  all) arch; pretrain & p=$!; probes scratch; wait $p          # `wait PID` hands each job's failure to set -e
       probes pretrained & q=$!; zero_shot; wait $q ;;
  *) echo "usage: $0 [all|pretrain|scratch|pretrained|zero-shot]" >&2; exit 2 ;;
esac
