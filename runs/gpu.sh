#!/usr/bin/env bash
# Every GPU figure of this project from one command, in device calls of < 10 minutes each.
#
#   bash runs/gpu.sh stage             here (CPU machine), once: gpu_data/ = GLUE-5, SQuAD 1.1 dev, a
#                                      tokenizer and as many Gutenberg books as the 64 MiB a call carries allow
#   bash runs/gpu.sh [STEP...]         on the GPU machine, the same command once per device call,
#                                      until it prints "all done" (exit 0; 75 = call again)
#   bash runs/gpu.sh collect FILES     here, after each call: the call's returned files (FILES = its
#                                      files_at folder) into results/gpu/ and gpu_data/encoder/
#   bash runs/gpu.sh --dry-run ...     the very same at toy sizes on the CPU, in gpu_dry/ (tests/test_gpu_dry_run.py)
#
# STEP: pretrain (5 min of ELECTRA-Small on the books; GPU_PRETRAIN_MINUTES), finetune (GLUE-5 x 3 seeds, SQuAD 1.1
# split-dev stand-in), bench (speed table), report (results/gpu/summary.md, goals); default: all four
# in this order. Each finished step (its JSON in results/gpu/) is skipped, so a call continues where
# the last stopped. The steps run as one background job (setsid) in gpu_run/, which outlives a call:
# a call starts the job if it is not running, follows its log for GPU_CALL_SECONDS (540), then
# copies results/gpu/*, the log and, between pretraining and fine-tuning, the encoder to $OUT,
# the folder the device tool returns. The dry run differs only in sizes, the CPU, and no compilation.
# Exit codes: 0 all requested steps done, 75 still running (call again), 1 a step failed, 2 bad setup.
set -euo pipefail

if [ "${1:-}" = "--job" ]; then JOB=1; shift; else JOB=0; fi
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
if [ "$JOB" = 1 ]; then cd "$GPU_ROOT"; else cd "$(dirname "$0")/.."; fi
ROOT=$PWD
if [ "$DRY" = 1 ]; then d_data=gpu_dry/data d_run=gpu_dry/run d_res=gpu_dry/results d_min=0.25
else d_data=gpu_data d_run=gpu_run d_res=results/gpu d_min=5; fi   # 5 minutes: a session has 15 device-minutes, machine start included
DATA=$(realpath -m "${GPU_DATA:-$d_data}")          # staged here, carried to the device
RUN=$(realpath -m "${GPU_RUN:-$d_run}")             # the job's own state on the machine that runs it
RESULTS=$(realpath -m "${GPU_RESULTS:-$d_res}")     # results in the working tree (committed after a real run)
MINUTES=${GPU_PRETRAIN_MINUTES:-$d_min}
SEEDS=${GPU_SEEDS:-3}
CALL_SECONDS=${GPU_CALL_SECONDS:-540}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
CODE=$RUN/code IN=$RUN/input RES=$RUN/results LOG=$RUN/job.log
export PYTHONUNBUFFERED=1
# The dry run shares 2 cores with other work: one thread each avoids OpenMP spin-waits (20x faster there).
[ "$DRY" = 0 ] || export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
die() { echo "error: $*" >&2; exit 2; }

# ---- the steps (run inside the background job, from a snapshot of the code in $CODE) ---------
electra() { "$PYTHON" -m electra "$@"; }
helper() { PYTHONPATH=$CODE/src "$PYTHON" "$CODE/runs/$1" "${@:2}"; }

if [ "$DRY" = 1 ]; then
  PRETRAIN_ARGS=(--preset debug --set model.hidden_size=32 --set model.embedding_size=32 --set model.ffn_size=64
                 --set model.max_position=512 --set train.batch_size=8 --set train.log_every=5
                 --set train.eval_every=20 --set train.eval_batches=2 --set train.save_every=10)
else
  PRETRAIN_ARGS=(--preset small --set train.compile=true)
fi
GLUE_TASKS=(cola sst2 mrpc stsb rte)

step_pretrain() {
  if [ -f "$RES/pretrain.json" ]; then echo "pretrain: done"; return; fi
  [ -d "$IN/corpus" ] || die "pretrain: no corpus in $DATA; run 'bash runs/gpu.sh stage' here and carry it"
  if [ ! -f "$RUN/data/meta.json" ]; then
    rm -rf "$RUN/data"  # an interrupted preparation of ours
    electra prepare "$IN/corpus" "$IN/tok" "$RUN/data" --max-length 128 --file-per-document
  fi
  local resume=()
  if compgen -G "$RUN/pretrain/checkpoints/step-*" >/dev/null; then resume=(--resume); else rm -rf "$RUN/pretrain"; fi
  electra pretrain "$RUN/data" "$RUN/pretrain" "${PRETRAIN_ARGS[@]}" --minutes "$MINUTES" --no-progress "${resume[@]}"
  helper gpu_data.py pack-encoder "$RUN/pretrain/final" "$RUN/transfer"
  helper gpu_report.py pretrain "$RUN/pretrain" "$RUN/data" "$RUN/env.json" "$RES/pretrain.json"
}

step_finetune() {
  local enc=$RUN/pretrain/final note="fp32 encoder pretrained on this machine"
  if [ ! -f "$enc/encoder_config.json" ]; then
    [ -d "$IN/encoder" ] || die "finetune: no pretrained encoder here and none carried in $DATA/encoder; run the pretrain step, or collect the files of the call that finished it"
    [ -f "$RUN/encoder/encoder_config.json" ] || helper gpu_data.py unpack-encoder "$IN/encoder" "$IN/tok" "$RUN/encoder"
    enc=$RUN/encoder note="encoder pretrained on an earlier machine, carried as fp16 pieces"
  fi
  local task t0
  for task in "${GLUE_TASKS[@]}" squad; do
    if helper gpu_report.py done "$RES/finetune.json" "$task"; then echo "finetune $task: done"; continue; fi
    rm -rf "$RUN/ft/$task"  # an interrupted run of ours
    t0=$(date +%s)
    if [ "$task" = squad ]; then
      electra finetune "$enc" --task squad --split-dev --dev-file "$IN/squad/dev-v1.1.json" --out "$RUN/ft/$task" \
        --cache-dir "$RUN/cache" --no-save-models --quiet
    else
      electra finetune "$enc" --task "$task" --seeds "$SEEDS" --out "$RUN/ft/$task" --glue-dir "$IN/glue" \
        --cache-dir "$RUN/cache" --no-save-models --no-test-predictions --quiet
    fi
    helper gpu_report.py finetune "$task" "$RUN/ft/$task" "$(( $(date +%s) - t0 ))" "$note" "$RES/finetune.json"
  done
}

step_bench() {
  local dry=()
  [ "$DRY" = 1 ] && dry=(--dry-run)
  "$PYTHON" "$CODE/benchmarks/gpu_suite.py" "$RES/benchmark.json" "${dry[@]}"
}

step_report() {
  local dry=()
  [ "$DRY" = 1 ] && dry=(--dry-run)
  helper gpu_report.py report "$RES" "${dry[@]}"
}

run_job() {  # the background job: the steps in order; its status file says where it is
  echo $$ >"$RUN/job.pid"
  export PYTHONPATH=$CODE/src
  trap 'rc=$?; [ "$rc" = 0 ] || echo "failed: $STEP (exit $rc)" >"$RUN/job.status"' EXIT
  "$PYTHON" - "$RUN/env.json" "$DRY" <<'EOF'
import json, os, platform, sys, time, torch
cuda = torch.cuda.is_available()
json.dump({"device": torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.processor() or platform.machine()})",
           "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "cpus": os.cpu_count(), "dry_run": sys.argv[2] == "1", "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())},
          open(sys.argv[1], "w"), indent=2)
EOF
  for STEP in "$@"; do
    echo "running $STEP" >"$RUN/job.status"
    echo "== $(date -u +%H:%M:%S) step $STEP"
    "step_$STEP"
  done
  echo "done" >"$RUN/job.status"
}

if [ "$JOB" = 1 ]; then run_job "$@"; exit 0; fi

# ---- commands run here: stage, collect ------------------------------------------------------------
case "${1:-}" in
  stage)
    toy=()
    [ "$DRY" = 1 ] && toy=(--toy)
    PYTHONPATH=$ROOT/src "$PYTHON" runs/gpu_data.py stage "$DATA" "${toy[@]}"
    exit 0 ;;
  collect)
    [ -n "${2:-}" ] || die "usage: bash runs/gpu.sh collect FILES (the files_at folder of a device call)"
    PYTHONPATH=$ROOT/src "$PYTHON" runs/gpu_data.py collect "$2" "$DATA" "$RESULTS"
    exit 0 ;;
esac

# ---- a device call: start or follow the job, then hand its results back ---------------------------
call_start=$(date +%s)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(pretrain finetune bench report)
for s in "${steps[@]}"; do
  case "$s" in pretrain|finetune|bench|report) ;; *) die "unknown step '$s' (pretrain, finetune, bench, report)";; esac
done
if [ "$DRY" = 0 ]; then
  "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" ||
    die "no CUDA device here ($PYTHON); on a CPU use 'bash runs/gpu.sh --dry-run'"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
[ -f "$DATA/STAGED.json" ] || die "$DATA is not staged: run 'bash runs/gpu.sh$([ $DRY = 1 ] && echo ' --dry-run') stage' first"
if grep -q '"toy": true' "$DATA/STAGED.json"; then staged_toy=1; else staged_toy=0; fi
[ "$staged_toy" = "$DRY" ] || die "$DATA was staged for $([ $staged_toy = 1 ] && echo 'the dry run' || echo 'the GPU run'); stage it again"

alive() {  # the job of $RUN/job.pid is running (not a leftover pid of another process)
  local pid
  pid=$(cat "$RUN/job.pid" 2>/dev/null) || return 1
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "gpu.sh --job" &&
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

mkdir -p "$RUN" "$RES"
if alive; then
  echo "the job started earlier is running ($(cat "$RUN/job.status")); following it"
else
  rm -rf "$CODE.new" "$IN.new"  # snapshot of code and inputs: the next call may replace the tree under the job
  mkdir -p "$CODE.new"
  cp -r src benchmarks runs "$CODE.new/"
  cp -r "$DATA" "$IN.new"
  rm -rf "$CODE" "$IN"
  mv "$CODE.new" "$CODE"
  mv "$IN.new" "$IN"
  for f in "$RESULTS"/*.json; do  # steps finished on an earlier machine are done here too
    [ -f "$f" ] && [ ! -f "$RES/$(basename "$f")" ] && cp "$f" "$RES/"
  done
  rm -f "$RUN/job.pid"
  echo "starting the job: ${steps[*]}$([ $DRY = 1 ] && echo ' (dry run)')" | tee -a "$LOG"
  dry_flag=()
  [ "$DRY" = 1 ] && dry_flag=(--dry-run)
  GPU_ROOT=$ROOT GPU_DATA=$DATA GPU_RUN=$RUN GPU_RESULTS=$RESULTS GPU_PRETRAIN_MINUTES=$MINUTES GPU_SEEDS=$SEEDS \
    PYTHON=$PYTHON setsid -f bash "$CODE/runs/gpu.sh" --job "${dry_flag[@]}" "${steps[@]}" >>"$LOG" 2>&1 </dev/null
  for _ in $(seq 50); do [ -f "$RUN/job.pid" ] && break; sleep 0.2; done
fi

offset=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
show_log() {  # print what the job logged since the last look
  local size
  size=$(stat -c %s "$LOG")
  if [ "$size" -gt "$offset" ]; then tail -c +"$((offset + 1))" "$LOG" | head -c "$((size - offset))"; fi
  offset=$size
}
while alive && [ $(( $(date +%s) - call_start )) -lt "$CALL_SECONDS" ]; do
  show_log
  sleep 2
done
show_log

# Hand back: results/gpu in the tree, and $OUT (at most 8 files, < 16 MiB each) for the device tool.
mkdir -p "$RESULTS"
cp "$RES"/*.json "$RES"/*.md "$RESULTS"/ 2>/dev/null || true
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT/results"
  cp "$RES"/*.json "$RES"/*.md "$OUT/results/" 2>/dev/null || true
  tail -c 4000000 "$LOG" >"$OUT/gpu.log"
  if [ -f "$RES/pretrain.json" ] && [ -d "$RUN/transfer" ] && ! helper gpu_report.py done "$RES/finetune.json" finetune; then
    mkdir -p "$OUT/encoder"
    cp "$RUN/transfer"/encoder-*.safetensors "$OUT/encoder/"
  fi
fi

status=$(cat "$RUN/job.status" 2>/dev/null || echo "not started")
if alive; then
  echo "still running ($status) after $(( $(date +%s) - call_start )) s: call 'bash runs/gpu.sh$([ $DRY = 1 ] && echo ' --dry-run')' again"
  exit 75
elif [ "$status" = done ]; then
  echo "all done: ${steps[*]} (results in $RESULTS)"
  exit 0
fi
echo "the job stopped: $status (log: $LOG)" >&2
exit 1
