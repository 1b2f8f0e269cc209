#!/usr/bin/env bash
# Fine-tuning dev accuracy with attention's products in bf16 (the code since f0cb36e) against the
# float32 products before it, and against the transformers loop: `ours` (what `electra finetune`
# trains) with each, and `peer`, at seeds 0-2 on SST-2 (first 10,000 training rows), MRPC (all) and
# RTE (first 1,000), from one checkpoint: the bf16 run of this folder's pretraining check
# (README.md). Resumable: finished task/arm/seed runs are kept.
#
#   bash results/attention-bf16/finetune.sh [CHECKPOINT]   # default /work/qc/run-bf16/final
set -euo pipefail
cd "$(dirname "$0")/../.."
CKPT=${1:-/work/qc/run-bf16/final}
PY=${PYTHON:-.venv/bin/python}
HERE=results/attention-bf16
for products in bf16 float32; do
    arms=ours
    [ "$products" = bf16 ] && arms=ours,peer   # the peer has no products of ours to switch
    ATTN=$products OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src "$PY" $HERE/finetune_launch.py \
        --model "$CKPT" --tasks sst2,mrpc,rte --seeds 3 --arms $arms \
        --max-train sst2=10000,rte=1000 --threads 2 --json $HERE/finetune-$products-products.json
done
# The extension (README.md): the 3-seed verdicts were "no", so seeds 3-5 for both products' arms
for products in bf16 float32; do
    ATTN=$products OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src "$PY" $HERE/finetune_launch.py \
        --model "$CKPT" --tasks sst2,mrpc,rte --seeds 6 --arms ours \
        --max-train sst2=10000,rte=1000 --threads 2 --json $HERE/finetune-$products-products.json
done
"$PY" $HERE/finetune_compare.py
