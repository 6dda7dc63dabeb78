# RemoteMedia developer commands. `make test` is what CI runs (.ci/run).
.PHONY: test fmt lint unit generate fuzz bench-tls bench-relay bench-autoscale cluster-up cluster-up-full cluster-down images demo python-env bench bench-router bench-resample bench-ipc bench-session bench-grpc bench-python bench-vad bench-pod-start bench-webrtc bench-operator bench-build-time demo-local clean

test:
	@./scripts/test.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

unit:
	cargo test --workspace

# Regenerate committed generated files (CRD); tests fail when they drift.
generate:
	cargo run -q -p remotemedia-operator --bin crdgen > crds/pipelines.remotemedia.dev.yaml
	cp crds/pipelines.remotemedia.dev.yaml charts/remotemedia-operator/files/crds/

# A real control plane on this machine (etcd, kube-apiserver, kube-controller-manager).
cluster-up:
	kind-tests/cluster.sh up control-plane

cluster-down:
	kind-tests/cluster.sh down

# The same plus a node (scheduler, containerd, kubelet, CNI, kube-proxy): pods really run.
cluster-up-full:
	kind-tests/cluster.sh up full

# This checkout's images, built without Docker, imported into the cluster (local or kind).
images:
	kind-tests/images.sh load

# Cluster, images, operator, an example Pipeline, a WAV streamed through it; prints the outputs.
demo:
	@./scripts/demo.sh

# Benchmarks (not part of `make test`; results go to docs/benchmarks.md by hand).
bench: bench-tls bench-router bench-resample bench-ipc bench-session bench-vad bench-grpc bench-python bench-webrtc bench-build-time bench-operator

bench-router:
	cargo bench -p remotemedia-runtime-core --bench router_latency

bench-resample:
	./scripts/bench-resample.sh

bench-ipc:
	cargo bench -p remotemedia-runtime-core --bench ipc_rtt

# Session round trips over the pod link (vs a Unix socket) and through a Python node (vs Rust),
# idle CPU of a worker with 100 sessions and of a Python node process.
bench-session:
	REMOTEMEDIA_TEST_PYTHON=$$(scripts/python-env.sh) cargo bench -p remotemedia-server --bench session_rtt

# python:VoiceActivity (Silero VAD) in a session vs the same node called directly in Python:
# CPU per second of audio and event latency.
bench-vad:
	REMOTEMEDIA_TEST_PYTHON=$$(scripts/python-env.sh) cargo bench -p remotemedia-server --bench vad

# A new worker pod's start to Ready on the Python image vs the plain runtime image (local
# cluster; sets it up as `make demo` does).
bench-pod-start:
	./scripts/bench-pod-start.sh

# gRPC streaming round trip vs a bare tonic echo, and 500 sessions at 50 frames/s.
bench-grpc:
	cargo bench -p remotemedia-grpc --bench grpc_load

# Every fuzz target for FUZZ_SECONDS (default 600) each: scripts/fuzz.sh, fuzz/README.md.
fuzz:
	scripts/fuzz.sh

# TLS against plaintext, same run: the gRPC streaming round trip and new connections
# (remotemedia-grpc --manifest), and WHIP offer-to-answer (remotemedia-webrtc).
bench-tls:
	GRPC_BENCH_ONLY=tls cargo bench -p remotemedia-grpc --bench grpc_load
	WEBRTC_BENCH_ONLY=tls cargo bench -p remotemedia-webrtc --bench webrtc_load

# WHIP offer-to-answer vs a plain GET, the round trip a PassThrough pipeline adds vs a bare str0m
# echo, and server CPU per session with 50 sessions vs the Opus work alone.
bench-webrtc:
	cargo bench -p remotemedia-webrtc --bench webrtc_load

# WebRTC through the TURN relay (coturn) against direct to the pod's address (root: netns).
bench-relay:
	./scripts/bench-relay.sh

# The autoscaler on the real cluster: time to capacity, the operator's cost per Pipeline.
bench-autoscale:
	./scripts/bench-autoscale.sh

# The Python package, release build (as `pip install` makes it) in its own cached venv:
# execute's per-call overhead vs a plain call, and sending 1/10/60 s of audio (lent vs copied).
bench-python:
	scripts/bench-python.sh

# The Python environment Python nodes and their tests use (a cached venv; prints its python).
python-env:
	@scripts/python-env.sh

bench-build-time:
	./scripts/bench-build-time.sh

# Operator latency, 500-Pipeline convergence and memory, against a real control plane.
bench-operator:
	kind-tests/cluster.sh up control-plane
	KUBECONFIG=$$(kind-tests/cluster.sh kubeconfig) cargo bench -p remotemedia-operator --features cluster-tests --bench operator_scale

# Without a cluster: the generated test WAV through the example pipelines, by the local CLI.
demo-local:
	mkdir -p out
	python3 examples/audio/make_wav.py out/test.wav
	cargo run -q -p remotemedia-server -- validate examples/pipelines/*.yaml examples/pipelines/*.json
	cargo run -q -p remotemedia-server -- run examples/pipelines/resample-chain.yaml --input out/test.wav --output out/asr-16k.wav
	cargo run -q -p remotemedia-server -- run examples/pipelines/audio-health.yaml --input out/test.wav > out/health.jsonl

clean:
	cargo clean
