#!/usr/bin/env bash
# Issue 10, first comparison: masked LM against ELECTRA at equal wall clock, run SIDE BY SIDE (one thread each,
# started together, same 55-minute budget), so whatever else loads the machine slows both alike. Same tiny
# architecture, WordPiece 8k tokenizer, IMDB-unsup blocks of 128, batch 64, each objective's shipped rate.
# Then the same probes for both encoders and for scratch: SST-2 dev at 1,000 and 100 labels (3 seeds, rate chosen
# on the selection split carved from train, grid extended at an edge), STS-B dev zero-shot Spearman ([CLS]
# cosine), IMDB at 1,000 labels. About 3 hours on an idle 2-core machine (1 h pretraining, ~2 h probes).
# Needs: configs/tokenizer/wordpiece-wiki-8k.yaml and configs/prepare/imdb-unsup-128.yaml run first.
#
# Usage: bash benchmarks/objectives_side_by_side.sh [MINUTES]      results: runs/objectives-side-by-side/
set -euo pipefail
cd "$(dirname "$0")/.."
NLP=".venv/bin/nlp-ssl"
MIN="${1:-55}"
OUT=runs/objectives-side-by-side
export NLP_SSL_DATA_DIR="${NLP_SSL_DATA_DIR:-$(cd .. && pwd)/shared/data}" TQDM_DISABLE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1
mkdir -p $OUT
common=(data=runs/data/imdb-unsup-wp8k-128 tokenizer=runs/tokenizers/wordpiece-wiki-8k train.max_time_minutes=$MIN
        impl.num_threads=1 "train.report_to=[none]" train.save_steps=1000 train.eval_steps=1000)
$NLP pretrain configs/pretrain/bert-tiny-imdb-cpu.yaml output_dir=$OUT/mlm "${common[@]}" > $OUT/mlm.log 2>&1 &
$NLP pretrain configs/pretrain/electra-tiny-cpu.yaml output_dir=$OUT/electra "${common[@]}" > $OUT/electra.log 2>&1 &
wait
FEW=configs/finetune/sst2-1000-labels-bert-tiny-cpu.yaml
for enc in mlm electra scratch; do
  if [ $enc = scratch ]; then init=(model=$OUT/mlm init=scratch); else init=(model=$OUT/$enc init=pretrained); fi
  init+=(save_predictions=false train.extend_lr_grid=true)
  $NLP finetune $FEW "${init[@]}" output_dir=$OUT/sst2-1000-$enc
  $NLP finetune $FEW "${init[@]}" output_dir=$OUT/sst2-100-$enc max_train_samples=100 train.num_train_epochs=30 \
    train.per_device_train_batch_size=16
  [ $enc = scratch ] || $NLP evaluate $OUT/$enc task.type=sts_zero_shot | tee $OUT/sts-$enc.log
done
for enc in mlm electra scratch; do
  if [ $enc = scratch ]; then init=(model=$OUT/mlm init=scratch); else init=(model=$OUT/$enc init=pretrained); fi
  $NLP finetune configs/finetune/imdb-bert-tiny-cpu.yaml "${init[@]}" save_predictions=false train.extend_lr_grid=true \
    output_dir=$OUT/imdb-1000-$enc max_train_samples=1000 seed=[1,2,3] train.learning_rate=[3e-4,1e-3] train.num_train_epochs=10
done
