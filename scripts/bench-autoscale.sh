#!/usr/bin/env bash
# `make bench-autoscale`: the autoscaler on the real cluster (kind-tests/benches/autoscale.rs):
# brings the cluster up with a node, loads this checkout's images (the debug binaries, as
# make test does), runs the benchmark, takes the cluster down. docs/benchmarks.md section 14.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
cargo build -q --workspace --all-features --all-targets
kind-tests/cluster.sh up full
trap 'kind-tests/cluster.sh down' EXIT
REMOTEMEDIA_IMAGE_PROFILE=dev kind-tests/images.sh load
bin=$(kind-tests/cluster.sh bin)
KUBECONFIG=$(kind-tests/cluster.sh kubeconfig) REMOTEMEDIA_HELM=$bin/helm \
  REMOTEMEDIA_GRPCURL=$(scripts/grpc-tools.sh) \
  REMOTEMEDIA_KUBECTL=$bin/kubectl \
  cargo bench -q --profile dev -p remotemedia-kind-tests --features e2e --bench autoscale
