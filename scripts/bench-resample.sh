#!/usr/bin/env bash
# FastResampleNode vs libsoxr HQ in one criterion run. Creates (once) a venv with numpy and
# soxr in a versioned cache directory outside the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${REMOTEMEDIA_CACHE:-$HOME/.cache/remotemedia}/venv-bench-v1"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "numpy>=1.26" "soxr==1.1.0"
fi
SOXR_PYTHON="$VENV/bin/python" cargo bench -p remotemedia-runtime-core --bench resample "$@"
