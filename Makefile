# RemoteMedia developer commands. `make test` is what CI runs (.ci/run).
.PHONY: test fmt lint unit bench bench-router bench-resample bench-build-time demo clean

test:
	@./scripts/test.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

unit:
	cargo test --workspace --all-features

# Benchmarks (not part of `make test`; results go to docs/benchmarks.md by hand).
bench: bench-router bench-resample bench-build-time

bench-router:
	cargo bench -p remotemedia-runtime-core --bench router_latency

bench-resample:
	./scripts/bench-resample.sh

bench-build-time:
	./scripts/bench-build-time.sh

# Stream the generated test WAV through the example pipelines.
demo:
	mkdir -p out
	python3 examples/audio/make_wav.py out/test.wav
	cargo run -q -p remotemedia-runtime-core -- validate examples/pipelines/*.yaml examples/pipelines/*.json
	cargo run -q -p remotemedia-runtime-core -- run examples/pipelines/resample-chain.yaml --input out/test.wav --output out/asr-16k.wav
	cargo run -q -p remotemedia-runtime-core -- run examples/pipelines/audio-health.yaml --input out/test.wav > out/health.jsonl

clean:
	cargo clean
