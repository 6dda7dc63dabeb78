#!/usr/bin/env bash
# The project's test suite: the one command CI runs (via `make test`). Prints each stage's time.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -a SUMMARY=()
stage() {
  local name=$1; shift
  local start=$SECONDS
  echo "==> ${name}"
  "$@"
  local took=$((SECONDS - start))
  SUMMARY+=("$(printf '%-28s %5ss' "${name}" "${took}")")
  echo "<== ${name}: ${took}s"
}

# Rust comes from rustup; rust-toolchain.toml pins the version (rustup fetches it if missing).
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install rustup (https://rustup.rs) first" >&2
  exit 1
fi

stage "format check"        cargo fmt --all -- --check
stage "clippy (-D warnings)" cargo clippy --workspace --all-targets --all-features -- -D warnings
stage "build"               cargo build --workspace --all-targets --all-features
stage "tests + doctests"    cargo test --workspace --all-features
stage "docs (-D warnings)"  env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features
stage "benches compile"     cargo bench --workspace --no-run

echo
echo "stage times:"
printf '  %s\n' "${SUMMARY[@]}"
