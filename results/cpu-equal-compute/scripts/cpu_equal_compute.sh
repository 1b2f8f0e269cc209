#!/usr/bin/env bash
# Issue 13's recorded run: ELECTRA vs MLM vs no pretraining at equal compute on this CPU, mini shape.
# The protocol (settings, budget, evaluation) is results/cpu-equal-compute/PROTOCOL.md.
#
#   bash results/cpu-equal-compute/scripts/cpu_equal_compute.sh [WORK]     # WORK (default ../cpu-equal-compute): data and runs, outside the repo
#
# Resumable: run it again after an interruption (or SIGTERM it to pause); finished pretraining and
# fine-tuning are kept. Results are copied into results/cpu-equal-compute/ after the experiment ends;
# `bash results/cpu-equal-compute/scripts/cpu_equal_compute.sh WORK collect` copies what has landed so far.
set -euo pipefail
cd "$(dirname "$0")/../../.."
REPO=$PWD
WORK=$(realpath -m "${1:-../cpu-equal-compute}")
STAGE=${2:-all}
DATA=${ELECTRA_DATA:-$REPO/../shared/data}
BOOKS=$DATA/corpus/gutenberg/books
OUT=$REPO/results/cpu-equal-compute
bash runs/setup.sh
E=$REPO/.venv/bin/electra
mkdir -p "$WORK"

collect() {
  [ -f "$WORK/exp/results.json" ] || { echo "no results yet under $WORK/exp"; return 0; }
  # results.md and the plot are rendered again from results.json by this checkout's code.
  "$REPO/.venv/bin/python" -c 'import json, sys; from pathlib import Path; from electra.experiment import write_results
write_results(Path(sys.argv[2]), json.loads(Path(sys.argv[1]).read_text()))' "$WORK/exp/results.json" "$OUT"
  for arm in electra mlm; do
    [ -f "$WORK/exp/pretrain/$arm/metrics.jsonl" ] && cp "$WORK/exp/pretrain/$arm/metrics.jsonl" "$OUT/pretrain_${arm}_metrics.jsonl"
  done
  echo "copied results into $OUT"
}
[ "$STAGE" = collect ] && { collect; exit 0; }

# The first record sampled with Gumbel-max (the default before inverse CDF): pinned below.
# The kept vocabulary (trained once on all 777 books; `electra tokenizer` is bit-reproducible).
[ -d "$WORK/data" ] || "$E" prepare "$BOOKS" "$OUT/tokenizer" "$WORK/data" --max-length 128 --file-per-document --cut-overflow \
    --heldout-fraction 0.05
RESUME=()
[ -d "$WORK/exp/pretrain" ] && RESUME=(--resume)
ELECTRA_DATA=$DATA "$E" experiment "$WORK/data" "$WORK/exp" --preset mini --electra-steps 3000 --seeds 3 \
    --tasks cola,sst2,mrpc,stsb,rte --final-only-tasks sst2 --fractions 0.25,0.5,1 \
    --no-pretraining-arm --ft-set length_grouping=50 --set train.sampler=gumbel "${RESUME[@]}"
collect
