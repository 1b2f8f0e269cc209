#!/usr/bin/env bash
# Issue 33's equal-accuracy check: ours, ours+grouped and the transformers loop, 3 seeds each, on
# SST-2 (first 10,000 training rows), RTE (first 1,000) and MRPC (all), from one pretrained
# checkpoint: the 3,000-step ELECTRA mini of results/gdes-mini (its `all` arm; made by
# results/gdes-mini/run.sh). The protocol is README.md here. Resumable: run it again and the
# finished task/arm/seed runs are kept.
#
#   bash results/finetune-accuracy/run.sh [CHECKPOINT]   # default /work/gdes-data/runs/all/final
set -euo pipefail
cd "$(dirname "$0")/../.."
CKPT=${1:-/work/gdes-data/runs/all/final}
PY=${PYTHON:-.venv/bin/python}
OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src "$PY" benchmarks/finetune_accuracy.py \
    --model "$CKPT" --tasks sst2,mrpc,rte --seeds 3 --arms ours,ours+grouped,peer \
    --max-train sst2=10000,rte=1000 --threads 2 --json results/finetune-accuracy/mini.json
