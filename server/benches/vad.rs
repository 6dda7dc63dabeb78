//! `python:VoiceActivity` (Silero VAD) in a pipeline against the same node called directly in
//! Python, same run. `make bench-vad` runs it.
//!
//! Speech from espeak-ng (examples/audio/make_speech.py, 16 kHz) is sent in 20 ms frames at
//! real-time pace through a one-node session, the node in its own process as in a pod. Measured:
//! - CPU per second of audio: this process (the runtime) plus the node's process, over the
//!   paced run; the baseline is the CPU time of calling the node's `process` on the same
//!   frames in one Python process.
//! - Event latency: from sending the frame that completes a speech window to receiving the
//!   event; the baseline is how long the `process` call that returns an event takes.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::python::{PythonNodes, PythonOptions};
use remotemedia_runtime_core::{
    AudioBuffer, PipelineRunner, RuntimeData, SessionOutput, StreamSession, TransportData,
};

const RATE: u32 = 16_000;
const FRAME: usize = 320; // 20 ms
const PASSES: usize = 3;

const MANIFEST: &str = r#"{"version":"v1","nodes":[{"id":"vad","node_type":"python:VoiceActivity","params":{"threshold":0.5,"min_silence_ms":300}}]}"#;

/// The baseline: the node's `process` on the same frames, in one Python process.
const DIRECT: &str = r#"
import json, sys, time, wave
import numpy as np
from remotemedia_nodes import Audio
from remotemedia_example_nodes import VoiceActivity
with wave.open(sys.argv[1]) as w:
    pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
frame, passes = int(sys.argv[2]), int(sys.argv[3])
latencies, events = [], 0
cpu = time.process_time()
for _ in range(passes):
    node = VoiceActivity(threshold=0.5, min_silence_ms=300, speech_pad_ms=30)
    list(node.process(Audio(np.zeros(frame, np.float32), 16000, 1, "mic", None)))  # as the pipeline's warm-up
    for i in range(0, len(pcm), frame):
        started = time.perf_counter()
        out = list(node.process(Audio(pcm[i:i + frame], 16000, 1, "mic", None)))
        if out:
            latencies.append(time.perf_counter() - started)
            events += len(out)
cpu = time.process_time() - cpu
print(json.dumps({"cpu_s": cpu, "audio_s": passes * len(pcm) / 16000, "latencies_s": latencies, "events": events}))
"#;

fn speech(dir: &std::path::Path) -> (std::path::PathBuf, Vec<f32>) {
    let wav = dir.join("speech16k.wav");
    let out = Command::new(support::test_python())
        .arg(support::example("../audio/make_speech.py")) // examples/audio/
        .arg(&wav)
        .args(["--rate", &RATE.to_string()])
        .output()
        .expect("make_speech.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples = hound::WavReader::open(&wav)
        .expect("wav")
        .into_samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32768.0)
        .collect();
    (wav, samples)
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn through_the_pipeline(samples: &[f32]) -> (f64, Vec<f64>, usize) {
    let mut registry = NodeRegistry::with_builtins();
    PythonNodes::discover(PythonOptions {
        interpreter: support::test_python().into(),
        ..PythonOptions::default()
    })
    .expect("Python node types (run scripts/python-env.sh)")
    .register(&mut registry);
    let runner = PipelineRunner::with_registry(registry);
    let manifest =
        Manifest::from_text(MANIFEST, Format::Json, runner.registry()).expect("manifest");
    let mut cpu = Duration::ZERO;
    let (mut latencies, mut events) = (Vec::new(), 0);
    for _ in 0..PASSES {
        let session = Arc::new(runner.create_stream_session(&manifest).expect("session"));
        // The node process starts with the first input: warm it with silence first.
        let warm = TransportData::new(RuntimeData::Audio(AudioBuffer::new(
            vec![0.0; FRAME],
            RATE,
            1,
        )));
        session.send_input(warm).await.expect("send");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let node = support::children_matching("remotemedia_nodes");
        assert_eq!(node.len(), 1, "one node process: {node:?}");
        let (cpu_self, cpu_node) = (
            cpu_time::ProcessTime::now(),
            support::process_cpu_time(node[0]),
        );
        let sent: Arc<std::sync::Mutex<HashMap<u64, Instant>>> = Arc::default();
        let receiver = {
            let (session, sent) = (session.clone(), sent.clone());
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(output) = session.recv_output().await.expect("receive") {
                    if let SessionOutput::Data { data, .. } = output {
                        let at = Instant::now();
                        let sequence = data.sequence.expect("sequence");
                        let started = sent.lock().unwrap()[&sequence];
                        got.push(at.duration_since(started).as_secs_f64());
                    }
                }
                got
            })
        };
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for (i, frame) in samples.chunks(FRAME).enumerate() {
            tick.tick().await;
            let mut input = TransportData::new(RuntimeData::Audio(AudioBuffer::new(
                frame.to_vec(),
                RATE,
                1,
            )));
            input.sequence = Some(i as u64 + 1);
            sent.lock().unwrap().insert(i as u64 + 1, Instant::now());
            session.send_input(input).await.expect("send");
        }
        session.end_input().await;
        let got = receiver.await.expect("receiver");
        cpu += cpu_self.elapsed() + (support::process_cpu_time(node[0]) - cpu_node);
        events += got.len();
        latencies.extend(got);
    }
    let audio = (PASSES * samples.len()) as f64 / f64::from(RATE);
    (cpu.as_secs_f64() / audio, latencies, events)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (wav, samples) = speech(dir.path());
    let direct = Command::new(support::test_python())
        .args(["-c", DIRECT])
        .arg(&wav)
        .args([FRAME.to_string(), PASSES.to_string()])
        .output()
        .expect("python");
    assert!(
        direct.status.success(),
        "{}",
        String::from_utf8_lossy(&direct.stderr)
    );
    let direct: serde_json::Value = serde_json::from_slice(&direct.stdout).expect("JSON");
    let direct_cpu =
        direct["cpu_s"].as_f64().expect("cpu_s") / direct["audio_s"].as_f64().expect("audio_s");
    let direct_latencies: Vec<f64> =
        serde_json::from_value(direct["latencies_s"].clone()).expect("latencies");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (cpu, latencies, events) = runtime.block_on(through_the_pipeline(&samples));
    assert_eq!(
        events,
        direct["events"].as_u64().expect("events") as usize,
        "the pipeline and the direct calls found the same events"
    );
    let ms = |s: f64| s * 1000.0;
    println!(
        "python:VoiceActivity, {PASSES} x {:.1} s of speech, 20 ms frames, {events} events",
        samples.len() as f64 / f64::from(RATE)
    );
    println!(
        "  CPU per second of audio: pipeline {:.1} ms, direct {:.1} ms, ratio {:.2}",
        ms(cpu),
        ms(direct_cpu),
        cpu / direct_cpu
    );
    println!(
        "  event latency p50/max: pipeline {:.2}/{:.2} ms, direct {:.2}/{:.2} ms; added p50 {:.2} ms",
        ms(percentile(latencies.clone(), 0.5)),
        ms(percentile(latencies.clone(), 1.0)),
        ms(percentile(direct_latencies.clone(), 0.5)),
        ms(percentile(direct_latencies.clone(), 1.0)),
        ms(percentile(latencies, 0.5) - percentile(direct_latencies, 0.5)),
    );
}
