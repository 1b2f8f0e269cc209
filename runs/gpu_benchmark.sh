#!/usr/bin/env bash
# Issue 5's measurement, ready for a machine with a GPU (e.g. through the device tool):
# our full pretraining step vs the same step built from transformers classes, same process.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
$PY -m pip install -q -e ".[test]" 2>/dev/null || true
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$PY benchmarks/pretrain_step.py --shape small --batch 128 --seq 128
$PY benchmarks/pretrain_step.py --shape small --batch 128 --seq 128 --compile
$PY benchmarks/pretrain_step.py --shape base --batch 128 --seq 128
$PY benchmarks/pretrain_step.py --shape base --batch 128 --seq 128 --compile
$PY benchmarks/pretrain_step.py --shape base --batch 256 --seq 512 --compile --no-peer --iters 5
