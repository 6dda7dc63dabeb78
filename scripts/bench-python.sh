#!/usr/bin/env bash
# `make bench-python`: installs this checkout's Python package (release build, the way
# `pip install ./transports/ffi` builds it) into a cached venv and runs its benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${REMOTEMEDIA_BENCH_VENV:-${HOME}/.cache/remotemedia/venv-bench-python-v1}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q ./transports/ffi >&2
exec "$venv/bin/python" transports/ffi/benches/bench_python.py
