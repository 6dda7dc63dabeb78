#!/usr/bin/env bash
# Container images of this checkout, built without Docker, and loaded into the test cluster.
#
#   kind-tests/images.sh build   binaries -> image archives in $IMAGES_DIR
#   kind-tests/images.sh load    build, then import into the cluster: kind (`kind load
#                                image-archive`) or the local cluster's containerd, whichever
#                                cluster.sh drives (lib/flavour.sh)
#
# REMOTEMEDIA_IMAGE_PROFILE=dev packs the debug binaries `cargo build` already made (what
# `make test` does: no second, release build); the default is release.
#
# Each image is one layer: the binary in /usr/local/bin, the shared libraries it links
# (its `ldd` closure), /etc/passwd and /etc/group naming the unprivileged user pods run as,
# and /tmp. Names are localhost/<binary>:<workspace version>, what the chart and the operator
# use by default. Users with Docker build the same images from Containerfile (repo root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib/versions.sh"
. "$here/lib/node.sh"
. "$here/lib/flavour.sh"

IMAGES_DIR=${REMOTEMEDIA_IMAGES_DIR:-$repo/target/images}
PROFILE=${REMOTEMEDIA_IMAGE_PROFILE:-release}
case "$PROFILE" in dev) OUT=$repo/target/debug ;; *) OUT=$repo/target/$PROFILE ;; esac
VERSION=$(awk -F'"' '/^version = / {print $2; exit}' "$repo/Cargo.toml")
# binary:package
IMAGES="remotemedia-runtime:remotemedia-server remotemedia-grpc:remotemedia-grpc remotemedia-webrtc:remotemedia-webrtc remotemedia-operator:remotemedia-operator"

say() { printf '[images] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

rootfs_for() { # binary dir
  local bin=$1 root=$2 lib
  rm -rf "$root" && mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp"
  chmod 1777 "$root/tmp"
  # Without debug info: it is most of a debug binary's size and no use in a pod.
  strip --strip-debug -o "$root/usr/local/bin/$bin" "$OUT/$bin"
  # The dynamic loader and every library the binary links, at the same paths.
  for lib in $(ldd "$OUT/$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\nremotemedia:x:65532:65532:remotemedia:/tmp:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nremotemedia:x:65532:\n' >"$root/etc/group"
}

build() {
  local selection=() entry
  if [ "$PROFILE" = dev ]; then
    # Exactly what `make test`'s build stage compiled (targets decide which dev-dependency
    # features are on, so --bins alone would rebuild half the tree): nothing rebuilds.
    selection=(--workspace --all-features --all-targets)
  else
    for entry in $IMAGES; do selection+=(-p "${entry#*:}"); done
  fi
  say "building the binaries ($PROFILE)"
  [ "$PROFILE" = dev ] || selection+=(--bins)
  (cd "$repo" && cargo build --profile "$PROFILE" --locked "${selection[@]}")
  mkdir -p "$IMAGES_DIR"
  for entry in $IMAGES; do
    local bin=${entry%%:*}
    rootfs_for "$bin" "$IMAGES_DIR/$bin.rootfs"
    python3 "$here/lib/mkimage.py" "$IMAGES_DIR/$bin.rootfs" "localhost/$bin:$VERSION" \
      "$IMAGES_DIR/$bin.tar" -- "/usr/local/bin/$bin" >&2
    rm -rf "$IMAGES_DIR/$bin.rootfs"
  done
}

load() {
  build
  local entry bin flavour
  flavour=$(cluster_flavour)
  for entry in $IMAGES; do
    bin=${entry%%:*}
    if [ "$flavour" = kind ]; then
      kind load image-archive --name "$KIND_NAME" "$IMAGES_DIR/$bin.tar"
    else
      [ -S "$CONTAINERD_SOCK" ] || die "no cluster containerd at $CONTAINERD_SOCK: run kind-tests/cluster.sh up full"
      ctr_ images import "$IMAGES_DIR/$bin.tar" >/dev/null
    fi
    say "loaded localhost/$bin:$VERSION"
  done
}

case "${1:-}" in
  build) build ;;
  load) load ;;
  *) die "usage: $0 build|load" ;;
esac
