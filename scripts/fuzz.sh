#!/usr/bin/env bash
# `make fuzz`: every fuzz target (fuzz/fuzz_targets) for FUZZ_SECONDS each (default 600), one
# after the other, with cargo-fuzz (libFuzzer, AddressSanitizer) on the nightly toolchain.
# Corpora and the build live outside the repo (~/.cache/remotemedia/fuzz), so a second run
# starts from what the first found. A crash stops the run with libFuzzer's report and the
# input under fuzz/artifacts/TARGET/; fix it and add a regression test next to the code.
#   FUZZ_TARGETS="whip_offer pod_link_codec" FUZZ_SECONDS=60 make fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-600}
targets=${FUZZ_TARGETS:-manifest_yaml manifest_json pod_link_codec grpc_adapters whip_offer webhook_review}
cache=${REMOTEMEDIA_CACHE:-$HOME/.cache/remotemedia}/fuzz
mkdir -p "$cache"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "[fuzz] installing cargo-fuzz (once)"
  cargo +nightly install cargo-fuzz --locked
fi
# The versions the product ships with, plus libFuzzer's.
cp Cargo.lock fuzz/Cargo.lock
export CARGO_TARGET_DIR="$cache/target"

# Seeds: the example manifests for the manifest targets.
for format in yaml json; do
  mkdir -p "$cache/corpus/manifest_$format"
  cp examples/pipelines/*."$format" "$cache/corpus/manifest_$format/" 2>/dev/null || true
done

for target in $targets; do
  corpus="$cache/corpus/$target"
  mkdir -p "$corpus"
  echo "[fuzz] $target for ${seconds}s (corpus $corpus)"
  started=$(date +%s)
  # -rss_limit_mb: a target that needs more than 2 GiB for one input is a finding.
  set +e
  (cd fuzz && cargo +nightly fuzz run "$target" "$corpus" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) \
    > "$cache/$target.log" 2>&1
  status=$?
  set -e
  grep -E '^(==[0-9]+==ERROR|SUMMARY|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)' \
    "$cache/$target.log" || tail -20 "$cache/$target.log"
  echo "[fuzz] $target: exit $status after $(( $(date +%s) - started ))s, corpus $(ls "$corpus" | wc -l) inputs"
  if [ "$status" -ne 0 ]; then
    if grep -q "failed to build fuzz script" "$cache/$target.log"; then
      echo "[fuzz] $target did not build: see $cache/$target.log" >&2
    else
      echo "[fuzz] $target found a crash: see $cache/$target.log and fuzz/artifacts/$target/" >&2
    fi
    exit "$status"
  fi
done
