#!/usr/bin/env bash
# An image with your own Python node packages, built without Docker: what
#
#   FROM localhost/remotemedia-runtime-python:0.1.0
#   USER root
#   RUN pip install --no-cache-dir --no-compile <packages> \
#    && python3 -m compileall -q --invalidation-mode unchecked-hash /usr/local/lib/python3.11
#   USER 65532:65532
#
# does with Docker (README "Your own node types in pods"). Usage:
#
#   scripts/node-image.sh BASE.tar NAME:TAG OUT.tar PACKAGE...
#
# BASE.tar is a docker-archive of the Python runtime image (`kind-tests/images.sh build` writes
# target/images/remotemedia-runtime-python.tar); PACKAGE is anything `pip install` takes (a
# directory, a wheel, `name==version`). The image's own pip installs them, in a chroot of the
# base, as `RUN pip install` would: what the base already has (numpy, remotemedia-nodes) is
# not installed twice. It reaches the index with this machine's DNS and pip settings (index
# URLs, CA bundle, proxies). The result is the base's layers plus one layer with what pip
# added, as bytecode that never needs writing at run time (pods' root filesystem is read-only).
# Needs root (chroot).
set -euo pipefail
shopt -s inherit_errexit
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

say() { printf '[node-image] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ $# -ge 4 ] || die "usage: $0 BASE.tar NAME:TAG OUT.tar PACKAGE..."
base=$1 name=$2 out=$3
shift 3
[ -f "$base" ] || die "no base image archive at $base"
[ "$(id -u)" = 0 ] || die "needs root: the image's pip runs in a chroot of it"

work=$(mktemp -d "${TMPDIR:-/tmp}/node-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root" "$work/layer"

# The base's file system, layer by layer (our images carry no whiteouts below the top).
python3 - "$base" "$root" <<'EOF'
import json, sys, tarfile
base, root = sys.argv[1], sys.argv[2]
with tarfile.open(base) as image:
    manifest = json.load(image.extractfile("manifest.json"))
    for name in manifest[0]["Layers"]:
        with tarfile.open(fileobj=image.extractfile(name)) as layer:
            layer.extractall(root, filter="tar")
EOF
[ -x "$root/usr/bin/python3" ] || die "$base has no /usr/bin/python3: not a Python runtime image"
find "$root" -xdev -printf '%P\n' | sort >"$work/before"

# Local packages are copied in; the rest is named as given.
mkdir -p "$root/tmp/src"
wanted=()
for arg in "$@"; do
  if [ -d "$arg" ]; then
    # Without what an earlier build left there: setuptools would take a stale build/ as current.
    copy=/tmp/src/$(basename "$arg")
    mkdir -p "$root$copy"
    tar -C "$arg" --exclude=./build --exclude='*.egg-info' --exclude=__pycache__ -cf - . |
      tar -C "$root$copy" -xf -
    wanted+=("$copy")
  elif [ -e "$arg" ]; then
    copy=/tmp/src/$(basename "$arg")
    cp "$arg" "$root$copy"
    wanted+=("$copy")
  else
    wanted+=("$arg")
  fi
done
# This machine's pip settings and DNS, for the image's pip.
pip_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp)
for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT \
  HTTPS_PROXY HTTP_PROXY NO_PROXY https_proxy http_proxy no_proxy; do
  if [ -n "${!var:-}" ]; then pip_env+=("$var=${!var}"); fi
done
cert=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
if [ -n "$cert" ] && [ -f "$cert" ]; then
  cp "$cert" "$root/tmp/pip-cert.pem"
  pip_env+=(PIP_CERT=/tmp/pip-cert.pem)
fi
cp "$root/etc/resolv.conf" "$work/resolv.conf" 2>/dev/null || : >"$work/resolv.conf"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

touch "$work/marker"
sleep 1 # find -newer compares whole seconds on some file systems
say "installing into the image: $*"
chroot "$root" env -i "${pip_env[@]}" python3 -m pip install --no-cache-dir --no-compile \
  --root-user-action=ignore --disable-pip-version-check --quiet "${wanted[@]}" >&2
chroot "$root" env -i "${pip_env[@]}" python3 -m compileall -q -j0 \
  --invalidation-mode unchecked-hash /usr/local/lib/python3.11 >&2
cp "$work/resolv.conf" "$root/etc/resolv.conf"
rm -rf "$root/tmp/src" "$root/tmp/pip-cert.pem"
find "$root" -xdev -printf '%P\n' | sort >"$work/after"

# The layer: every path pip created or changed, and a whiteout for every path it removed.
(cd "$root" && find . -xdev -newer "$work/marker" \( -type f -o -type l \) -not -path './tmp/*' \
  -not -path ./etc/resolv.conf -print0 |
  tar --null --no-recursion -T - -cf -) | tar -C "$work/layer" -xf -
comm -23 "$work/before" "$work/after" | while IFS= read -r gone; do
  parent=$(dirname "$gone")
  [ -e "$root/$parent" ] || continue # the parent went too: its own whiteout covers this
  mkdir -p "$work/layer/$parent"
  : >"$work/layer/$parent/.wh.$(basename "$gone")"
done
python3 "$repo/kind-tests/lib/mkimage.py" "$work/layer" "$name" "$out" --base "$base" >&2
