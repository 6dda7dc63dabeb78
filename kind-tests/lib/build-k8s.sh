#!/usr/bin/env bash
# Builds Kubernetes, etcd, helm and crictl from the Go module proxy into a versioned cache
# directory outside the repo (see versions.sh). Idempotent: each binary is built once, and a
# run that finds them all returns at once.
#
# Why a throwaway module: k8s.io/kubernetes requires its staging modules at v0.0.0 through
# replace directives, so `go install k8s.io/kubernetes/cmd/...@v1.35.x` is refused. Our own
# main module requires k8s.io/kubernetes and replaces each staging module with the v0.35.x tag
# the publishing bot cut from the same commit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"

say() { printf '[build-k8s] %s\n' "$*" >&2; }

# Every binary present: nothing to do. (Checked per binary, so adding a tool to the list
# builds just that one on machines that have the rest.)
ALL="etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kubelet helm crictl"
missing=$(for b in $ALL; do [ -x "$K8S_BIN/$b" ] || echo "$b"; done)
[ -z "$missing" ] && { say "cached: $K8S_BIN"; exit 0; }

command -v go >/dev/null || { say "go is not installed; it is needed to build Kubernetes"; exit 1; }
proxy=$(go env GOPROXY | cut -d, -f1)
if ! curl -fsS -o /dev/null --max-time 20 "$proxy/k8s.io/kubernetes/@v/$K8S_VERSION.info"; then
  say "cannot reach the Go module proxy ($proxy): Kubernetes binaries cannot be built here"
  exit 1
fi

mkdir -p "$K8S_BIN" "$GOMODCACHE" "$GOCACHE"
export GOFLAGS="-mod=mod -modcacherw" GOTOOLCHAIN=local CGO_ENABLED=0
work=$(mktemp -d /tmp/remotemedia-k8sbuild.XXXXXX)
trap 'rm -rf "$work"' EXIT

build_kubernetes() {
  local need=()
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kubelet; do
    [ -x "$K8S_BIN/$c" ] || need+=("$c")
  done
  [ ${#need[@]} -eq 0 ] && return
  mkdir -p "$work/k8s" && cd "$work/k8s"
  local staging="v0.${K8S_VERSION#v1.}" minor
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  printf 'module local/k8sbuild\n\ngo 1.26\n\ngodebug default=go1.25\n\nrequire k8s.io/kubernetes %s\n' \
    "$K8S_VERSION" > go.mod
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  # The staging list changes between releases: read it from upstream's go.mod.
  for m in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u); do
    go mod edit -replace="$m=$m@$staging"
  done
  say "resolving modules for ${need[*]}"
  go get $(for c in "${need[@]}"; do echo "k8s.io/kubernetes/cmd/$c@$K8S_VERSION"; done)
  local ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  # Control-plane binaries first, so `up control-plane` can start before the node ones exist.
  for c in kube-apiserver kube-controller-manager kubectl kube-scheduler kube-proxy kubelet; do
    [ -x "$K8S_BIN/$c" ] && continue
    say "building $c $K8S_VERSION"
    go build -trimpath -ldflags "$ldflags" -o "$K8S_BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$K8S_BIN/$c.tmp" "$K8S_BIN/$c"
  done
}

build_etcd() {
  [ -x "$K8S_BIN/etcd" ] && return
  mkdir -p "$work/etcd" && cd "$work/etcd"
  printf 'module local/etcdbuild\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > go.mod
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  say "building etcd $ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$K8S_BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$K8S_BIN/etcd.tmp" "$K8S_BIN/etcd"
}

go_install() { # binary module/path@version [ldflags]
  [ -x "$K8S_BIN/$1" ] && return
  say "building $1 ${2##*@}"
  GOBIN="$work/gobin" go install -trimpath -ldflags "-s -w ${3:-}" "$2"
  mv "$work/gobin/$1" "$K8S_BIN/$1"
}

start=$(date +%s)
build_etcd
build_kubernetes
go_install helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
# crictl: removes the node's pods through CRI (stopping sandboxes tears down their network).
go_install crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" \
  "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
say "built into $K8S_BIN in $(( $(date +%s) - start )) s"
