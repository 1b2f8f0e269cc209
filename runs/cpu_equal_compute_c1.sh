#!/usr/bin/env bash
# Issue 13's run-on C1 (results/cpu-equal-compute/PROTOCOL.md): one pretrained arm of the record
# continued from its final checkpoint to 3x its budget (ELECTRA 9,000 steps, MLM 13,779: equal
# FLOPs by the official counter), checkpointed at 2/3 and at the end.
#
#   bash runs/cpu_equal_compute_c1.sh WORK electra|mlm    # WORK: the record's folder (runs/cpu_equal_compute.sh)
#
# Resumable (SIGTERM checkpoints; run it again). The record's own folders are only read.
# Set PYTHONPATH to a frozen copy of src/ to continue on the record's pretraining code (ae2b599).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=$(realpath "${1:?usage: $0 WORK electra|mlm}")
ARM=${2:?usage: $0 WORK electra|mlm}
case $ARM in
  electra) FINAL=3000 ;;
  mlm) FINAL=4593 ;;
  *) echo "error: arm must be electra or mlm, not '$ARM'" >&2; exit 2 ;;
esac
SRC=$WORK/exp/pretrain/$ARM/checkpoints/$(printf step-%07d $FINAL)
RUN=$WORK/probes/C1-$ARM
[ -f "$SRC/state.json" ] || { echo "error: $SRC: the record's final $ARM checkpoint is missing" >&2; exit 2; }
if [ ! -d "$RUN" ]; then
  mkdir -p "$RUN/checkpoints.partial"
  cp -r "$SRC" "$RUN/checkpoints.partial/"
  mv "$RUN/checkpoints.partial" "$RUN/checkpoints"
fi
cd "$WORK"
exec "$REPO/.venv/bin/python" - "$ARM" "$FINAL" <<'PY'
import sys
from pathlib import Path

from electra.config import load_config, parse_overrides
from electra.experiment import plan
from electra.train.loop import pretrain

arm, final = sys.argv[1], int(sys.argv[2])
# 3x the ELECTRA arm's 3,000 steps; MLM gets the same FLOPs by the official counter (13,779 steps).
steps = plan("mini", ["train.sampler=gumbel"], None, 9000, 128)["steps"][arm]
cfg = load_config("mini", Path(f"exp/pretrain/{arm}/config.json"), parse_overrides([f"train.max_steps={steps}"]))
pretrain(cfg, Path("data"), Path(f"probes/C1-{arm}"), resume=True, show_progress=False,
         save_steps=frozenset({2 * final, steps}))
PY
