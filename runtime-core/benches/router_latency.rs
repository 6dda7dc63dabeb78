//! Per-frame latency through a 4-node PassThrough chain, against a bare chain of 4 tokio mpsc
//! hops in the same run. One 20 ms frame (48 kHz mono) is in flight at a time: send, then await
//! its output, so the figure is latency, not throughput.
//!
//! Run with: `make bench-router` (cargo bench -p remotemedia-runtime-core --bench router_latency)

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::{
    AudioBuffer, PipelineRunner, RuntimeData, StreamSession, TransportData,
};
use tokio::sync::mpsc;

const HOPS: usize = 4;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn frame() -> RuntimeData {
    RuntimeData::Audio(AudioBuffer::new(vec![0.1f32; 960], 48_000, 1))
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("frame_latency_4_hops");
    group.measurement_time(Duration::from_secs(5));

    // Baseline: 4 tasks, each forwarding from one bounded mpsc to the next.
    group.bench_function("bare_tokio_mpsc_chain", |b| {
        let (tx, mut rx) = rt.block_on(async {
            let (first_tx, mut rx) = mpsc::channel::<RuntimeData>(16);
            for _ in 0..HOPS {
                let (tx, next_rx) = mpsc::channel(16);
                tokio::spawn(async move {
                    while let Some(item) = rx.recv().await {
                        if tx.send(item).await.is_err() {
                            break;
                        }
                    }
                });
                rx = next_rx;
            }
            (first_tx, rx)
        });
        let item = frame();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    tx.send(item.clone()).await.unwrap();
                    rx.recv().await.unwrap();
                }
                start.elapsed()
            })
        });
    });

    // The router: a session of 4 PassThrough nodes in a chain.
    group.bench_function("passthrough_chain_session", |b| {
        let runner = PipelineRunner::new();
        let nodes: Vec<_> = (0..HOPS).map(|i| serde_json::json!({"id": format!("p{i}"), "node_type": "PassThrough"})).collect();
        let edges: Vec<_> = (1..HOPS).map(|i| serde_json::json!({"from": format!("p{}", i - 1), "to": format!("p{i}")})).collect();
        let doc = serde_json::json!({"version": "v1", "metadata": {"name": "bench"}, "nodes": nodes, "connections": edges});
        let manifest = Manifest::from_text(&doc.to_string(), Format::Json, runner.registry()).unwrap();
        let session = rt.block_on(async { runner.create_stream_session(&manifest).unwrap() });
        let item = frame();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    session.send_input(TransportData::new(item.clone())).await.unwrap();
                    session.recv_output().await.unwrap().unwrap();
                }
                start.elapsed()
            })
        });
        rt.block_on(session.close());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
