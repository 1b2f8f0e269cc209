#!/usr/bin/env bash
# The headline on a GPU in ONE device call: ELECTRA-Small and its MLM baseline side by side at equal
# FLOPs, then GLUE-5 on both, in under 10 minutes (runs/gpu_call.py says how).
#
#   bash runs/gpu.sh stage               here: gpu_data/ = the Gutenberg books that fit, GLUE-5, a 30,522-token
#                                        vocabulary; prints what it staged and the size a call sends (64 MiB at most)
#   bash runs/gpu.sh [SETTINGS]          there, one call: run(command="bash runs/gpu.sh", carry=["gpu_data"],
#                                        timeout_s=600); results.json and the logs land in $OUT as they are made
#   bash runs/gpu.sh collect FILES_AT    here: the call's files into results/gpu-equal-compute/
#                                        (results.md, glue_vs_flops.png, results.json, logs/)
#   bash runs/gpu.sh --dry-run ...       the very same at toy sizes on the CPU, in gpu_dry/ (tests/test_gpu_dry_run.py)
#
# SETTINGS: --electra-steps N, --pairs K, --total-seconds S, --prep-seconds S, --glue-seconds S, --seeds N,
# --compile BOOL, ... (python runs/gpu_call.py run --help). Folders: GPU_DATA, GPU_RUN, GPU_RESULTS.
# Exit codes: 0 done, 1 a phase failed (what it had is in $OUT), 2 bad setup.
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=()
if [ "${1:-}" = "--dry-run" ]; then DRY=(--dry-run); shift; fi
if [ ${#DRY[@]} = 1 ]; then
  d_data=gpu_dry/data d_run=gpu_dry/run d_res=gpu_dry/results
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # many small processes on 2 cores: no OpenMP spin-waits
else
  d_data=gpu_data d_run=gpu_run d_res=results/gpu-equal-compute
fi
DATA=${GPU_DATA:-$d_data} RUN=${GPU_RUN:-$d_run} RESULTS=${GPU_RESULTS:-$d_res}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
case "${1:-}" in
  stage)
    exec "$PYTHON" runs/gpu_data.py stage "$DATA" $([ ${#DRY[@]} = 1 ] && echo --toy) ;;
  collect)
    [ -n "${2:-}" ] || { echo "error: usage: bash runs/gpu.sh collect FILES_AT (the device call's files_at folder)" >&2; exit 2; }
    exec "$PYTHON" runs/gpu_report.py collect "$2" "$RESULTS" ;;
esac
if [ ${#DRY[@]} = 0 ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$PYTHON" runs/gpu_call.py run "$DATA" "$RUN" "${OUT:-$RUN.out}" "${DRY[@]}" "$@"
