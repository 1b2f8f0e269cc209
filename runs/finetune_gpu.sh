#!/usr/bin/env bash
# Issue 3's GPU check, ready for a GPU machine: fine-tune one pretrained checkpoint on every GLUE
# task whose data is here and on the SQuAD 1.1 split-dev stand-in; scores go to OUT/glue/results.json
# and OUT/squad/results.json, wall-clock per task to OUT/wall_clock.txt.
#   bash runs/finetune_gpu.sh MODEL [OUT]
# GLUE_ARGS / SQUAD_ARGS add flags (e.g. GLUE_ARGS="--max-train 64 --set epochs=1" for a smoke run);
# SQUAD=0 skips SQuAD.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: bash runs/finetune_gpu.sh MODEL [OUT]}
OUT=${2:-ft_gpu}
SEEDS=${SEEDS:-3}
[ -x .venv/bin/electra ] && export PATH="$PWD/.venv/bin:$PATH"
mkdir -p "$OUT"
for task in cola sst2 mrpc stsb rte wnli; do
  start=$(date +%s)
  # shellcheck disable=SC2086
  electra finetune "$MODEL" --task "$task" --seeds "$SEEDS" --out "$OUT/glue" --no-save-models --quiet ${GLUE_ARGS:-}
  echo "$task: $(( $(date +%s) - start )) s wall, $SEEDS seed(s)" | tee -a "$OUT/wall_clock.txt"
done
if [ "${SQUAD:-1}" != 0 ]; then
  start=$(date +%s)
  # shellcheck disable=SC2086
  electra finetune "$MODEL" --task squad --split-dev --out "$OUT/squad" --quiet ${SQUAD_ARGS:-}
  echo "squad (split-dev stand-in): $(( $(date +%s) - start )) s wall" | tee -a "$OUT/wall_clock.txt"
fi
echo "done: $OUT/glue/results.json, $OUT/squad/results.json, $OUT/wall_clock.txt"
