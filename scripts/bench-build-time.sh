#!/usr/bin/env bash
# Clean-build time of the core crate alone (library, no CLI features) against the whole
# workspace, each from an empty target directory, in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=$(mktemp -d /tmp/remotemedia-buildtime.XXXXXX)
trap 'rm -rf "$TARGET"' EXIT
cargo fetch --quiet
time_build() {
  rm -rf "$TARGET"/*
  local start end
  start=$(date +%s.%N)
  CARGO_TARGET_DIR="$TARGET" cargo build --quiet "$@"
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
core=$(time_build -p remotemedia-runtime-core --lib --no-default-features)
workspace=$(time_build --workspace --all-targets)
printf 'core crate alone (lib, no default features): %6.1f s\n' "$core"
printf 'whole workspace (all targets):               %6.1f s\n' "$workspace"
printf 'ratio core/workspace:                        %6.2f\n' "$(echo "$core / $workspace" | bc -l)"
