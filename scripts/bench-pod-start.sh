#!/usr/bin/env bash
# `make bench-pod-start`: how long a new worker pod takes to become Ready, on the Python image
# (python-voice: python:Gain and python:VoiceActivity, so two Python node types listed at
# start) against the plain runtime image (audio-health: built-ins only), same run, on the
# local cluster. Each round scales a Pipeline from 1 to 2 replicas and times, from the patch,
# until its status counts 2 ready replicas (the operator's reconcile, the scheduler, the
# kubelet's sandbox and containers, the runtime's startup probe); then scales back. Rounds
# alternate between the two Pipelines. Then, in fresh namespaces, apply-to-Ready of each
# Pipeline's first deployment: for python-voice that includes the operator reading the image's
# node catalog with a probe pod. Sets up what it needs as `make demo` does; the cluster
# stays up. REMOTEMEDIA_IMAGE_PROFILE=dev packs debug binaries (what `make test` loads).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
say() { printf '[bench-pod-start] %s\n' "$*" >&2; }

kind-tests/cluster.sh up full >&2
K8S_BIN=$(kind-tests/cluster.sh bin)
export KUBECONFIG; KUBECONFIG=$(kind-tests/cluster.sh kubeconfig)
kubectl() { "$K8S_BIN/kubectl" "$@"; }
kind-tests/images.sh load >&2
"$K8S_BIN/helm" upgrade --install remotemedia-operator charts/remotemedia-operator \
  --namespace remotemedia-system --create-namespace --wait --timeout 3m >&2
# A namespace of a run before may still be terminating: start from none.
kubectl delete namespace bench bench-first-1 bench-first-2 bench-first-3 --ignore-not-found \
  --wait=true --timeout=180s >/dev/null
kubectl create namespace bench >/dev/null

ready_replicas() { # pipeline count
  kubectl wait -n bench "pipeline/$1" --for=jsonpath='{.status.readyReplicas}'="$2" --timeout=180s >/dev/null
}
for p in audio-health python-voice; do
  kubectl apply -n bench -f "examples/pipelines/$p.yaml" >/dev/null
  kubectl wait -n bench "pipeline/$p" --for=condition=Ready --timeout=180s >/dev/null
  ready_replicas "$p" 1
done

declare -A times
for round in $(seq "$ROUNDS"); do
  for p in audio-health python-voice; do
    started=$(date +%s.%N)
    kubectl patch -n bench "pipeline/$p" --type merge -p '{"spec":{"replicas":2}}' >/dev/null
    ready_replicas "$p" 2
    took=$(python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.2f}')" "$(date +%s.%N)" "$started")
    times[$p]+="$took "
    say "round $round $p: ${took}s"
    kubectl patch -n bench "pipeline/$p" --type merge -p '{"spec":{"replicas":1}}' >/dev/null
    # Wait until the second pod is gone, so the next round starts from one pod.
    kubectl wait -n bench "pipeline/$p" --for=jsonpath='{.status.replicas}'=1 --timeout=180s >/dev/null
  done
done

kubectl delete namespace bench --wait=true --timeout=180s >/dev/null

declare -A first
for round in $(seq 3); do
  ns=bench-first-$round
  kubectl create namespace "$ns" >/dev/null
  for p in audio-health python-voice; do
    started=$(date +%s.%N)
    kubectl apply -n "$ns" -f "examples/pipelines/$p.yaml" >/dev/null 2>&1
    kubectl wait -n "$ns" "pipeline/$p" --for=condition=Ready --timeout=180s >/dev/null
    took=$(python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.2f}')" "$(date +%s.%N)" "$started")
    first[$p]+="$took "
    say "first apply $round $p: ${took}s"
  done
  kubectl delete namespace "$ns" --wait=true --timeout=180s >/dev/null
done

python3 - "${times[audio-health]}" "${times[python-voice]}" "${first[audio-health]}" "${first[python-voice]}" <<'EOF'
import statistics, sys
plain, python, plain_first, python_first = ([float(x) for x in arg.split()] for arg in sys.argv[1:5])
p50 = statistics.median
def show(title, plain, python):
    print(f"{title}, {len(plain)} rounds each (median, min-max):")
    print(f"  plain runtime image (audio-health): {p50(plain):.2f} s ({min(plain):.2f}-{max(plain):.2f})")
    print(f"  Python image (python-voice):        {p50(python):.2f} s ({min(python):.2f}-{max(python):.2f})")
    print(f"  ratio Python/plain: {p50(python) / p50(plain):.2f}")
show("new pod to Ready (scale 1 -> 2)", plain, python)
show("first apply to Ready in a fresh namespace (python-voice: catalog probe included)", plain_first, python_first)
EOF
