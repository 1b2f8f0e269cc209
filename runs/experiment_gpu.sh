#!/usr/bin/env bash
# Issue 6's recorded run, ready for one GPU in chunks of < 10 minutes (the device tool's limit):
# each call continues where the last stopped (`timeout` sends SIGTERM; the loop saves and exits 143).
#   bash runs/gpu.sh stage            # here, once: gpu_data/ (books, tokenizer, GLUE-5) to carry
#   bash runs/experiment_gpu.sh       # there, carrying gpu_data; repeat until results.json appears
# Not part of runs/gpu.sh (two more pretraining arms: beyond one session's device time).
set -euo pipefail
cd "$(dirname "$0")/.."
STAGED=${STAGED:-gpu_data}        # from `bash runs/gpu.sh stage`; ../shared does not travel to a device
CORPUS=${CORPUS:-$STAGED/corpus}
OUT=${EXP_OUT:-exp_gpu}           # not $OUT: that is the folder the device tool hands back
FLOPS=${FLOPS:-2e17}            # per arm, official counter (1.29e12 per ELECTRA-Small 128 x 128 step: 2e17 = 155k steps)
CHUNK=${CHUNK:-540}
if [ -x .venv/bin/python ]; then PY=${PYTHON:-.venv/bin/python}; else PY=${PYTHON:-python3}; fi
electra() { PYTHONPATH=$PWD/src "$PY" -m electra "$@"; }
mkdir -p "$OUT"
[ -f "$OUT/data/meta.json" ] || electra prepare "$CORPUS" "$STAGED/tok" "$OUT/data" --max-length 128 --file-per-document
rc=0
PYTHONPATH=$PWD/src timeout --signal=TERM "$CHUNK" "$PY" -m electra experiment "$OUT/data" "$OUT/exp" --preset small --flops "$FLOPS" \
  --tasks cola,sst2,mrpc,stsb,rte --seeds 3 --glue-dir "$STAGED/glue" --resume || rc=$?
if [ "$rc" = 0 ]; then echo "done: $OUT/exp/results.json"; else echo "stopped ($rc): run again to continue"; fi
