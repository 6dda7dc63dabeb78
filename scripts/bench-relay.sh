#!/usr/bin/env bash
# `make bench-relay`: WebRTC through the TURN relay against direct to the pod's address, same
# run (docs/benchmarks.md section 13). The server is the release remotemedia-webrtc serving a
# PassThrough pipeline in a network namespace of its own (a pod: its own address, reached over
# a veth pair); the relay is the cluster's coturn image (kind-tests/images.sh relay) run from
# its root filesystem on this machine's end of the pair; the client is aiortc
# (transports/webrtc/tests/clients/whip_client.py) on this machine. Needs root (netns, chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
command -v openssl >/dev/null || apt-get install -y -qq openssl >&2
cargo build -q --release -p remotemedia-webrtc
python=$(scripts/python-env.sh)
kind-tests/images.sh relay >&2
work=$(mktemp -d)
ns=rm-bench-pod-$$
cleanup() {
  [ -f "$work/pids" ] && kill $(cat "$work/pids") 2>/dev/null || true
  ip netns delete "$ns" 2>/dev/null || true
  ip link delete rmb$$h 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The relay's root filesystem: the image's one layer.
mkdir -p "$work/image" "$work/relay"
tar -xf "$repo/target/images/remotemedia-turn.tar" -C "$work/image"
layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Layers"][0])' "$work/image/manifest.json")
tar -xf "$work/image/$layer" -C "$work/relay"
mkdir -p "$work/relay/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout "$work/relay/certs/tls.key" -out "$work/relay/certs/tls.crt" -subj /CN=10.215.0.1 \
  -addext subjectAltName=IP:10.215.0.1 2>/dev/null
chmod 644 "$work/relay/certs/"*

# The "pod": its own namespace and address.
ip netns add "$ns"
ip link add rmb$$h type veth peer name rmb$$p
ip link set rmb$$p netns "$ns"
ip addr add 10.215.0.1/30 dev rmb$$h && ip link set rmb$$h up
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" ip addr add 10.215.0.2/30 dev rmb$$p
ip netns exec "$ns" ip link set rmb$$p up

"$python" scripts/bench_relay.py --work "$work" --netns "$ns" \
  --server "$repo/target/release/remotemedia-webrtc" --relay-root "$work/relay"
