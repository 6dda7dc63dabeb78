# Versions and cache locations shared by the cluster scripts. Sourced, not executed.
# Bumping a version changes the cache directory, so a stale build is never reused.
K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.21.4
CRICTL_VERSION=v1.34.0
K8S_CACHE_ROOT=${REMOTEMEDIA_K8S_CACHE:-/var/cache/remotemedia/k8s}
K8S_BIN=$K8S_CACHE_ROOT/$K8S_VERSION-etcd$ETCD_VERSION-helm$HELM_VERSION/bin
# Go's own caches live beside the binaries so a rebuild after a version bump reuses modules.
export GOMODCACHE=$K8S_CACHE_ROOT/gomodcache GOCACHE=$K8S_CACHE_ROOT/gocache GOPATH=$K8S_CACHE_ROOT/gopath
