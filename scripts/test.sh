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
    cargo test -p remotemedia-operator --features cluster-tests --test cluster --test chart
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

stage "format check"        cargo fmt --all -- --check
stage "clippy (-D warnings)" cargo clippy --workspace --all-targets --all-features -- -D warnings
# --all-targets builds the benches too (debug), so they cannot rot between benchmark runs.
stage "build"               cargo build --workspace --all-targets --all-features
stage "tests + doctests"    cargo test --workspace
# The Python node package, against the Rust encoder's golden vectors. The venv is cached
# outside the repo; its version suffix changes when the pins below do.
python_tests() {
  local venv=${HOME}/.cache/remotemedia/venv-py-v1
  if [ ! -x "$venv/bin/python" ]; then
    # Debian splits venv support out of python3.
    python3 -m venv "$venv" 2>/dev/null || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
  fi
  "$venv/bin/pip" install -q "numpy>=1.24" "pytest>=8" "iceoryx2==0.10.0"
  PYTHONPATH=runtime-core/python "$venv/bin/python" -m pytest -q runtime-core/python/tests
}

stage "python (pytest)"     python_tests
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

echo
echo "stage times:"
printf '  %s\n' "${SUMMARY[@]}"
