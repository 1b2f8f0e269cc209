#!/usr/bin/env bash
# Issue 34's CPU measurement: ELECTRA mini, model.embedding_sharing=all vs gdes, same seed and data.
# The protocol is README.md here. Both arms run side by side, one thread each, and are resumable:
# run this again after an interruption (SIGTERM saves a checkpoint) and both continue.
#
#   bash results/gdes-mini/run.sh [WORK]      # WORK (default /work/gdes-data): data and runs, outside the repo
#   python results/gdes-mini/plot.py [WORK]   # results.json and curves.png from what has landed
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
WORK=$(realpath -m "${1:-/work/gdes-data}")
DATA_ROOT=${ELECTRA_DATA:-$REPO/../shared/data}
PY=${PYTHON:-$REPO/.venv/bin/python}
mkdir -p "$WORK/books"
# The first 60 books (by file name) of the shared Gutenberg corpus, with the kept 30,522-token vocabulary.
if [ ! -d "$WORK/data" ]; then
  for f in $(ls "$DATA_ROOT/corpus/gutenberg/books" | head -60); do ln -sf "$DATA_ROOT/corpus/gutenberg/books/$f" "$WORK/books/$f"; done
  PYTHONPATH=$REPO/src "$PY" -m electra prepare "$WORK/books" results/cpu-equal-compute/tokenizer "$WORK/data" \
      --max-length 128 --file-per-document --heldout-fraction 0.05
fi
for arm in all gdes; do
  RESUME=()
  [ -d "$WORK/runs/$arm/checkpoints" ] && RESUME=(--resume)
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$REPO/src nohup "$PY" -m electra pretrain "$WORK/data" "$WORK/runs/$arm" \
      --preset mini --set model.embedding_sharing=$arm --set train.seed=0 --set train.save_every=100 \
      "${RESUME[@]}" >> "$WORK/runs-$arm.log" 2>&1 &
  echo "$arm: pid $! (log $WORK/runs-$arm.log)"
done
wait
