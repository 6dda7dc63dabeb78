//! FastResampleNode 48 kHz -> 16 kHz mono against libsoxr HQ (PyPI `soxr`) in the same run.
//!
//! Both stream the same 10 s signal in 20 ms (960-frame) pieces and are timed in CPU time of
//! the resampling work alone (the soxr side times itself inside Python with
//! `time.process_time()`, so interpreter start-up is not counted). One iteration = 10 s of
//! audio, so audio-seconds per CPU-second = 10 / (time per iteration).
//!
//! Run with: `make bench-resample` (sets SOXR_PYTHON to a venv holding numpy and soxr).
//! Without SOXR_PYTHON the soxr entry is skipped.

use std::process::Command;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::{Criterion, criterion_group, criterion_main};
use remotemedia_runtime_core::nodes::{NodeRegistry, Outputs};
use remotemedia_runtime_core::{AudioBuffer, RuntimeData};

const SECONDS: usize = 10;
const RATE: usize = 48_000;
const FRAME: usize = 960;

/// The shared test signal: two tones, the same formula as scripts/soxr_bench.py.
fn signal() -> Vec<f32> {
    (0..SECONDS * RATE)
        .map(|i| {
            let t = i as f64 / RATE as f64;
            (0.4 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 0.2 * (2.0 * std::f64::consts::PI * 3_000.0 * t).sin()) as f32
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let frames: Vec<RuntimeData> = signal()
        .chunks(FRAME)
        .map(|chunk| RuntimeData::Audio(AudioBuffer::new(chunk.to_vec(), RATE as u32, 1)))
        .collect();
    let registry = NodeRegistry::with_builtins();
    let mut group = c.benchmark_group("resample_48k_to_16k_mono_10s_in_20ms_frames");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));

    for quality in ["Medium", "High"] {
        let factory = registry.get("FastResampleNode").unwrap();
        let params =
            serde_json::json!({"source_rate": 48_000, "target_rate": 16_000, "quality": quality});
        group.bench_function(format!("FastResampleNode_{quality}"), |b| {
            b.iter_custom(|iters| {
                let start = ThreadTime::now();
                for _ in 0..iters {
                    let mut node = factory.create(&params).unwrap().into_local().unwrap();
                    let mut out = Outputs::default();
                    for f in &frames {
                        node.process(f.clone(), &mut out).unwrap();
                        out.drain().for_each(drop);
                    }
                    node.finish(&mut out).unwrap();
                }
                start.elapsed()
            });
        });
    }

    match std::env::var("SOXR_PYTHON") {
        Ok(python) => {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/soxr_bench.py");
            group.bench_function("libsoxr_HQ_python_stream", |b| {
                b.iter_custom(|iters| {
                    let out = Command::new(&python)
                        .args([script, &iters.to_string(), &SECONDS.to_string()])
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
                    Duration::from_secs_f64(secs)
                });
            });
        }
        Err(_) => eprintln!(
            "SOXR_PYTHON not set: skipping the libsoxr comparison (use `make bench-resample`)"
        ),
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
