#!/usr/bin/env bash
# Create .venv (if missing) and install electra with its test extras. Idempotent and quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch: the pinned CPU build, unless the venv already has a torch (e.g. a CUDA build installed on purpose).
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
