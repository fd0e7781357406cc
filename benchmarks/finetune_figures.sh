#!/usr/bin/env bash
# The figures of the fine-tuning and QA issues: a pretrained encoder against the same architecture from scratch,
# same recipe, budget and seeds; each initialisation at its own best learning rate from the grid (chosen on the
# task's selection split, carved from train, with seed 1; dev/test reported). Encoder: configs/pretrain/bert-tiny-imdb-cpu.yaml (run it first). Results: runs/figures/*/metrics.json,
# tabulated by benchmarks/summarize_finetune.py. About 80 minutes on 2 CPU cores. Runs already finished
# (same config) are skipped, so the script can be re-run after an interruption.
#
# Usage: bash benchmarks/finetune_figures.sh [ENCODER_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
NLP=".venv/bin/nlp-ssl"
ENC="${1:-runs/pretrain/bert-tiny-imdb-cpu}"
OUT=runs/figures
export NLP_SSL_DATA_DIR="${NLP_SSL_DATA_DIR:-$(cd .. && pwd)/shared/data}" TQDM_DISABLE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1
FEW=configs/finetune/sst2-1000-labels-bert-tiny-cpu.yaml  # 3 seeds, grid 1e-4, 3e-4, 1e-3

for init in pretrained scratch; do
  common=(model="$ENC" init=$init save_predictions=false)
  # SST-2 dev accuracy: 100 labels (30 epochs, batch 16), 1,000 labels (10 epochs)
  $NLP finetune $FEW "${common[@]}" output_dir=$OUT/sst2-100-$init max_train_samples=100 train.num_train_epochs=30 \
    train.per_device_train_batch_size=16
  $NLP finetune $FEW "${common[@]}" output_dir=$OUT/sst2-1000-$init
  # IMDB accuracy on a held-out part of imdb/train: 100 and 1,000 labels, 256 tokens, head+tail truncation
  $NLP finetune configs/finetune/imdb-bert-tiny-cpu.yaml "${common[@]}" output_dir=$OUT/imdb-100-$init \
    max_train_samples=100 seed=[1,2,3] train.learning_rate=[1e-4,3e-4,1e-3] train.num_train_epochs=30 train.per_device_train_batch_size=16
  $NLP finetune configs/finetune/imdb-bert-tiny-cpu.yaml "${common[@]}" output_dir=$OUT/imdb-1000-$init \
    max_train_samples=1000 seed=[1,2,3] train.learning_rate=[3e-4,1e-3] train.num_train_epochs=10
done
# Self-training on IMDB with 100 labels (pretrained encoder): accuracy per round
$NLP finetune configs/finetune/imdb-100-self-training-bert-tiny-cpu.yaml model="$ENC" save_predictions=false \
  output_dir=$OUT/imdb-100-self-training
for init in pretrained scratch; do
  # Extractive QA: SQuADShifts -> SQuAD v1.1 dev half A, same 600 steps
  $NLP finetune configs/finetune/squad-bert-tiny-cpu.yaml model="$ENC" init=$init output_dir=$OUT/squad-$init
done
for init in pretrained scratch; do
  # All labels: SST-2, 1 epoch of 67,349, grid 3e-4, 1e-3, 3 seeds
  $NLP finetune configs/finetune/sst2-bert-tiny-cpu.yaml model="$ENC" init=$init save_predictions=false \
    output_dir=$OUT/sst2-all-$init seed=[1,2,3] train.learning_rate=[3e-4,1e-3] train.num_train_epochs=1
done
for init in pretrained scratch; do
  # All labels: IMDB, 1 epoch of 17,428 reviews at 256 tokens, one rate and one seed (5 minutes a run here)
  $NLP finetune configs/finetune/imdb-bert-tiny-cpu.yaml model="$ENC" init=$init save_predictions=false \
    output_dir=$OUT/imdb-all-$init seed=[1] train.learning_rate=[1e-3] train.num_train_epochs=1
done
.venv/bin/python benchmarks/summarize_finetune.py $OUT
# The same runs as a markdown report: pretrained vs scratch per label count (mean ± std, bootstrap intervals),
# the label-efficiency plot, the encoder's pretraining curves and links to every model card.
$NLP report "$ENC" $OUT --output $OUT/report --title "Fine-tuning figures: pretrained vs scratch"
