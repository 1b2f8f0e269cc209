#!/usr/bin/env bash
# Issue 6's recorded run, ready for one GPU in chunks of < 10 minutes (the device tool's limit):
# each call continues where the last stopped (`timeout` sends SIGTERM; the loop saves and exits 143).
#   CORPUS=path/to/books  bash runs/experiment_gpu.sh   # repeat until results.json appears
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${CORPUS:-../shared/data/corpus/gutenberg/books}
OUT=${OUT:-exp_gpu}
FLOPS=${FLOPS:-2e17}            # per arm, official counter (1.29e12 per ELECTRA-Small 128 x 128 step: 2e17 = 155k steps)
CHUNK=${CHUNK:-540}
mkdir -p "$OUT"
[ -f "$OUT/tok/vocab.txt" ] || electra tokenizer "$CORPUS" "$OUT/tok" --vocab-size 30522
[ -f "$OUT/data/meta.json" ] || electra prepare "$CORPUS" "$OUT/tok" "$OUT/data" --max-length 128 --file-per-document
rc=0
timeout --signal=TERM "$CHUNK" electra experiment "$OUT/data" "$OUT/exp" --preset small --flops "$FLOPS" \
  --tasks cola,sst2,mrpc,stsb,rte --seeds 3 --resume || rc=$?
if [ "$rc" = 0 ]; then echo "done: $OUT/exp/results.json"; else echo "stopped ($rc): run again to continue"; fi
