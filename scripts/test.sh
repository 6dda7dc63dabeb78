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

cluster_tests() {
  KUBECONFIG=$(kind-tests/cluster.sh kubeconfig) \
  REMOTEMEDIA_HELM=$K8S_BIN/helm REMOTEMEDIA_KUBECTL=$K8S_BIN/kubectl \
    cargo test -p remotemedia-operator --features cluster-tests --test cluster --test chart \
      --test webhook_renewal
}

chart_checks() {
  local chart=charts/remotemedia-operator ns
  local kubectl=("$K8S_BIN/kubectl" --kubeconfig "$(kind-tests/cluster.sh kubeconfig)")
  "$K8S_BIN/helm" lint "$chart" --strict --kube-version 1.35.4
  for ns in remotemedia-system rm-watch-a rm-watch-b; do
    "${kubectl[@]}" create namespace "$ns" --dry-run=client -o yaml | "${kubectl[@]}" apply --server-side -f - >/dev/null
  done
  for values in "" "--set watchNamespaces={rm-watch-a,rm-watch-b} --set replicaCount=2" \
      "--set webhook.enabled=false --set crds.create=false"; do
    # shellcheck disable=SC2086 # the values are separate words on purpose
    "$K8S_BIN/helm" template ci "$chart" --namespace remotemedia-system --kube-version 1.35.4 $values |
      "${kubectl[@]}" apply --server-side --force-conflicts --dry-run=server -f - >/dev/null
    echo "chart renders and the apiserver accepts it: ${values:-defaults}"
  done
}

# Debian packages: libopus-dev for the build (the WebRTC transport), chromium for its tests.
stage "system packages"     scripts/system-packages.sh
stage "format check"        cargo fmt --all -- --check
stage "clippy (-D warnings)" cargo clippy --workspace --all-targets --all-features -- -D warnings
# --all-targets builds the benches too (debug), so they cannot rot between benchmark runs.
stage "build"               cargo build --workspace --all-targets --all-features
# Python nodes need an interpreter with the packages: a venv cached outside the repo, with
# this checkout's packages reinstalled. The Rust tests that spawn Python nodes use it too.
python_env() {
  REMOTEMEDIA_TEST_PYTHON=$(scripts/python-env.sh)
  export REMOTEMEDIA_TEST_PYTHON
}
stage "python env"          python_env
# grpcurl, the third-party client the gRPC server tests use (built once, cached).
grpc_tools() {
  REMOTEMEDIA_GRPCURL=$(scripts/grpc-tools.sh)
  export REMOTEMEDIA_GRPCURL
}
stage "gRPC tools"          grpc_tools
# playwright-core for the headless-Chromium tests of the WebRTC demo page (cached).
browser_tools() {
  REMOTEMEDIA_NODE_MODULES=$(scripts/browser-tools.sh)
  export REMOTEMEDIA_NODE_MODULES
}
stage "browser tools"       browser_tools
stage "tests + doctests"    cargo test --workspace
# The Python package (transports/ffi), built by maturin as `pip install` does, in the debug
# profile so it reuses the build stage's artifacts.
stage "python package (pip)" env MATURIN_PEP517_ARGS="--profile dev" \
  "$REMOTEMEDIA_TEST_PYTHON" -m pip install -q ./transports/ffi
# The Python packages: codec against the Rust encoder's golden vectors, node registry and
# process protocol, the example gain node, the remotemedia package and its examples.
stage "python (pytest)"     "$REMOTEMEDIA_TEST_PYTHON" -m pytest -q runtime-core/python/tests \
  examples/python-nodes/tests transports/ffi/tests examples/python-sdk/tests
stage "docs (-D warnings)"  env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

# A real control plane (etcd, kube-apiserver, kube-controller-manager) for the operator.
# The first run on a machine builds Kubernetes from the Go module proxy (about 10 min).
K8S_BIN=$(kind-tests/cluster.sh bin)
if kind-tests/cluster.sh status | grep -q "kube-apiserver running"; then
  echo "using the control plane that is already running"
else
  trap 'kind-tests/cluster.sh down' EXIT
fi
stage "control plane up"    kind-tests/cluster.sh up control-plane
stage "operator on the control plane" cluster_tests
stage "helm lint + server dry-run" chart_checks

# The end-to-end suite on a real node: kubelet, containerd, CNI and kube-proxy join the
# control plane, this checkout's images (from the debug binaries built above) are imported,
# and the suite installs the chart and drives Pipelines with real clients (kind-tests/tests/e2e).
e2e() {
  KUBECONFIG=$(kind-tests/cluster.sh kubeconfig) \
  REMOTEMEDIA_HELM=$K8S_BIN/helm REMOTEMEDIA_KUBECTL=$K8S_BIN/kubectl \
  REMOTEMEDIA_NODE_CRICTL=$(kind-tests/cluster.sh node-crictl) \
  REMOTEMEDIA_E2E_REACH=$([ "$(kind-tests/cluster.sh flavour)" = kind ] && echo port-forward || echo direct) \
    cargo test --workspace --all-features --test e2e -- --nocapture # the build stage's features: no rebuild
}
stage "node up (kubelet, containerd, CNI, kube-proxy)" kind-tests/cluster.sh up full
stage "images (no Docker) into containerd" env REMOTEMEDIA_IMAGE_PROFILE=dev kind-tests/images.sh load
# On failure, what the cluster looked like, before the EXIT trap takes it down.
e2e_or_report() {
  e2e && return
  local status=$? kubectl=("$K8S_BIN/kubectl" --kubeconfig "$(kind-tests/cluster.sh kubeconfig)")
  echo "---- the end-to-end suite failed; cluster state:"
  "${kubectl[@]}" get pods,deployments,services,pipelines -A -o wide || true
  "${kubectl[@]}" get events -A --sort-by=.lastTimestamp | tail -40 || true
  "${kubectl[@]}" logs -n remotemedia-system -l app.kubernetes.io/instance=remotemedia-operator --tail=40 || true
  echo "component logs: /var/lib/remotemedia-cluster/logs/"
  return $status
}
stage "end-to-end suite"    e2e_or_report
if trap -p EXIT | grep -q "cluster.sh down"; then
  trap - EXIT
  stage "cluster down"      kind-tests/cluster.sh down
  stage "nothing left behind" kind-tests/cluster.sh check-clean
fi

echo
echo "stage times:"
printf '  %s\n' "${SUMMARY[@]}"
