#!/usr/bin/env bash
# Install, then run the test suite (CPU; tests that need ../shared/data skip with a reason when it is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash runs/setup.sh
exec .venv/bin/python -m pytest -rs "$@"
