#!/usr/bin/env bash
# The main job (`make quickstart`): does pretraining on unlabelled in-domain text reduce the labels a task needs?
# tokenizer -> blocks -> masked-LM encoder -> fill-mask beside an untrained model -> SST-2 with 200 and 1,000 labels,
# pretrained and from scratch (3 seeds, rate chosen on the selection split) -> QA with its measured quality ->
# push (dry run) -> report with the label-efficiency plot. Every step is cached: a finished step answers at once.
# Usage: scripts/quickstart.sh [BIN_DIR]   (default .venv/bin); NLP_SSL_DATA_DIR points at the shared data.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-.venv/bin}"
q=configs/quickstart
out=runs/quickstart

"$bin/nlp-ssl" train-tokenizer $q/tokenizer.yaml
"$bin/nlp-ssl" prepare $q/prepare.yaml
"$bin/nlp-ssl" pretrain $q/pretrain.yaml
echo "== what the encoder learned: masked words of held-out reviews (IMDB's labelled split, never pretrained on)"
"$bin/python" scripts/fill_mask.py $out/encoder --output $out/fill-mask.json

# The pretrained and the from-scratch runs of one label count go side by side, one core each: tiny models train
# faster on one thread each than on two threads one after the other.
pair() {  # pair CONFIG NAME: the config on the encoder, and the same from random weights, in parallel
  "$bin/nlp-ssl" finetune "$1" impl.num_threads=1 > "$out/$2.log" 2>&1 &
  local a=$!
  "$bin/nlp-ssl" finetune "$1" init=scratch output_dir="$out/$2-scratch" impl.num_threads=1 > "$out/$2-scratch.log" 2>&1 &
  local b=$!
  local status=0
  wait $a || status=$?
  wait $b || status=$?
  for log in "$out/$2.log" "$out/$2-scratch.log"; do
    echo "== $log"; grep -E "^fine-tuning |^(selection|dev|test):|already holds|Error|error" "$log" || tail -5 "$log"
  done
  return $status
}
pair $q/finetune.yaml sst2-200
pair $q/finetune-1000.yaml sst2-1000

"$bin/nlp-ssl" finetune $q/finetune-qa.yaml
"$bin/nlp-ssl" answer $out/squad --question "What does the encoder learn from?" \
  --context "The encoder learns from unlabelled text, then a few labels teach it the task."
chosen=$("$bin/python" -c "import json; from nlp_ssl.layout import cell_name; m = json.load(open('$out/sst2-200/metrics.json'));
print(cell_name(m['selection']['best_learning_rate'], m['seeds'][0]))")  # the run at the rate the selection split chose
"$bin/nlp-ssl" push "$out/sst2-200/$chosen" --repo-id me/sst2-200-tiny --dry-run
"$bin/nlp-ssl" report $out --output $out/report --title "nlp-ssl quickstart"
echo "== open $out/report/report.md (label-efficiency plot: $out/report/plots/)"
