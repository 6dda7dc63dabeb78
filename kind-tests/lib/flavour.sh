# Which cluster the scripts drive. Sourced by cluster.sh and images.sh.
#
#   REMOTEMEDIA_CLUSTER=local   Kubernetes as plain processes on this machine (no Docker)
#   REMOTEMEDIA_CLUSTER=kind    a kind cluster (kind-tests/kind-config.yaml)
#
# Unset: kind when `kind` is installed and Docker answers, the local cluster otherwise.
KIND_NAME=remotemedia

cluster_flavour() {
  case "${REMOTEMEDIA_CLUSTER:-}" in
    local|kind) echo "$REMOTEMEDIA_CLUSTER" ;;
    "") if command -v kind >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo kind; else echo local; fi ;;
    *) echo "REMOTEMEDIA_CLUSTER must be local or kind, not '$REMOTEMEDIA_CLUSTER'" >&2; return 1 ;;
  esac
}
