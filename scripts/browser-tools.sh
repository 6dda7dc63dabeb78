#!/usr/bin/env bash
# The headless browser the WebRTC tests drive: Debian's chromium (full Chromium: the headless
# shell refuses getUserMedia) and npm playwright-core, cached outside the repo. Prints the
# node_modules directory to put on NODE_PATH.
set -euo pipefail
PLAYWRIGHT_VERSION=1.65.1
dir=${REMOTEMEDIA_NODE_TOOLS:-${HOME}/.cache/remotemedia/node-tools-v1}
command -v chromium >/dev/null || apt-get install -y -qq chromium >/dev/null
if [ ! -f "$dir/node_modules/playwright-core/package.json" ] ||
   ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$dir/node_modules/playwright-core/package.json"; then
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "playwright-core@$PLAYWRIGHT_VERSION" >&2
fi
echo "$dir/node_modules"
