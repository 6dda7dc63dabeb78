#!/usr/bin/env bash
# Debian packages the build and tests need, installed when missing (CI runs as root):
# libopus-dev + pkg-config (the WebRTC transport links libopus), chromium (the browser tests),
# espeak-ng (speech for the voice-activity tests), mmdebstrap (the Python images' Debian base
# and the TURN relay's), curl (https requests to WHIP replicas in the tests), iproute2 and
# iptables (the end-to-end suite's client network namespace, with its UDP blocked).
set -euo pipefail
missing=()
for pkg in libopus-dev pkg-config chromium espeak-ng mmdebstrap curl iproute2 iptables; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && { echo "system packages present"; exit 0; }
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
}
