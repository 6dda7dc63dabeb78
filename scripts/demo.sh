#!/usr/bin/env bash
# `make demo`: a real cluster on this machine, this checkout's images, the operator installed
# with its Helm chart, the audio-health example Pipeline, and a sample WAV streamed through its
# gRPC Service by the Python client. Ends by printing what came back. The cluster stays up
# (KUBECONFIG printed at the end); `make cluster-down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n[demo] %s\n' "$*"; }

say "cluster (first run on a machine builds Kubernetes from the Go module proxy, ~10 min)"
kind-tests/cluster.sh up full
K8S_BIN=$(kind-tests/cluster.sh bin)
export KUBECONFIG; KUBECONFIG=$(kind-tests/cluster.sh kubeconfig)
kubectl=("$K8S_BIN/kubectl")

say "images, built without Docker and imported into the cluster's containerd"
kind-tests/images.sh load

say "operator (helm upgrade --install charts/remotemedia-operator)"
"$K8S_BIN/helm" upgrade --install remotemedia-operator charts/remotemedia-operator \
  --namespace remotemedia-system --create-namespace --wait --timeout 3m

say "Pipeline examples/pipelines/audio-health.yaml"
"${kubectl[@]}" create namespace demo --dry-run=client -o yaml | "${kubectl[@]}" apply -f - >/dev/null
"${kubectl[@]}" apply -n demo -f examples/pipelines/audio-health.yaml
"${kubectl[@]}" wait -n demo pipeline/audio-health --for=condition=Ready --timeout=180s
"${kubectl[@]}" get -n demo pipelines,deployments,pods,services

python=$(scripts/python-env.sh)
addr="$("${kubectl[@]}" get -n demo service audio-health-grpc -o jsonpath='{.spec.clusterIP}'):50051"
wav=$(mktemp -d)/speech-like.wav
"$python" examples/audio/make_wav.py "$wav"
say "streaming $wav through $addr (the Service's ClusterIP):"
# kube-proxy may not have programmed the Service yet: retry for a minute, then give up loudly.
streamed=false
for _ in $(seq 60); do
  if "$python" examples/grpc-client/python/stream_wav.py --server "$addr" --input "$wav"; then
    streamed=true
    break
  fi
  sleep 1
done
$streamed || { say "streaming through $addr failed for a minute; see kubectl get pods -n demo"; exit 1; }
say "done. KUBECONFIG=$KUBECONFIG; remove everything with: make cluster-down"
