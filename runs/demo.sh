#!/usr/bin/env bash
# The main job: install, then run the whole pretraining pipeline on the built-in corpus (a few minutes on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash runs/setup.sh
exec .venv/bin/electra demo "${@:-demo_run}" --overwrite
