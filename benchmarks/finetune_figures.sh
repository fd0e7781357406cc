#!/usr/bin/env bash
# The figures of README "Does pretraining pay off?", in one command from a clean clone (with ../shared beside it
# and .venv set up by `make`): a pretrained encoder against the same architecture from scratch, same recipe,
# budget and seeds; each initialisation at its own best learning rate from the grid (chosen on the task's
# selection split, carved from train, with seed 1; dev/test reported).
#
# Without ENCODER_DIR it first builds the encoder: the tokenizer (configs/tokenizer/wordpiece-wiki-8k.yaml), the
# IMDB blocks (configs/prepare/imdb-unsup-128.yaml) and configs/pretrain/bert-tiny-imdb-tokens-cpu.yaml, a token
# budget (20,480,000 tokens = 2,500 steps of 64 x 128), so the encoder does not depend on the machine's speed.
# Each step is skipped when its output is already there (same config), so the script can be re-run after an
# interruption. Results: runs/figures/*/metrics.json (each with its provenance: commit, versions, machine, load at
# start and end), tabulated by benchmarks/summarize_finetune.py into runs/figures/figures.json. About 100 minutes
# on 2 idle CPU cores (the encoder about 20 of them).
#
# Usage: bash benchmarks/finetune_figures.sh [ENCODER_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
NLP=".venv/bin/nlp-ssl"
OUT=runs/figures
export NLP_SSL_DATA_DIR="${NLP_SSL_DATA_DIR:-$(cd .. && pwd)/shared/data}" TQDM_DISABLE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1
# torch threads pinned (2, the figures' machine): another thread count gives other weights from the same seed
# (README: earlier figures withdrawn), and torch's default is the machine's core count. Each run records it.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
if [ $# -ge 1 ]; then
  ENC="$1"
else
  ENC=runs/pretrain/bert-tiny-imdb-tokens-cpu
  $NLP train-tokenizer configs/tokenizer/wordpiece-wiki-8k.yaml
  $NLP prepare configs/prepare/imdb-unsup-128.yaml
  $NLP pretrain configs/pretrain/bert-tiny-imdb-tokens-cpu.yaml
fi
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
.venv/bin/python benchmarks/summarize_finetune.py $OUT --encoder "$ENC" --json $OUT/figures.json
# The same runs as a markdown report: pretrained vs scratch per label count (mean ± std, bootstrap intervals),
# the label-efficiency plot, the encoder's pretraining curves and links to every model card.
$NLP report "$ENC" $OUT --output $OUT/report --title "Fine-tuning figures: pretrained vs scratch"
