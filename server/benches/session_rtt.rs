//! Round trips of one 20 ms 48 kHz mono frame through a PassThrough session, each against a
//! baseline measured in the same run, and idle CPU. `make bench-session` runs it.
//!
//! 1. Pod link: client -> `remotemedia-runtime serve` worker process (iceoryx2) -> client,
//!    against the same messages (same codec, same session) over a Unix domain socket to a
//!    server process (this binary re-run as one).
//! 2. Python: through a `python:PassThrough` node in its own process, against the Rust
//!    `PassThrough` in this process.
//! 3. Idle CPU: a worker holding 100 open idle sessions; a Python node process between
//!    frames.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use remotemedia_runtime_core::ipc::codec::{Envelope, Message, decode, encode};
use remotemedia_runtime_core::ipc::{ClientOptions, IpcRunner, LinkName};
use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::python::{PythonNodes, PythonOptions};
use remotemedia_runtime_core::{
    AudioBuffer, PipelineRunner, RuntimeData, SessionOutput, StreamSession, TransportData,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const ROUNDS: usize = 5_000;
const WARMUP: usize = 500;
const IDLE_SESSIONS: usize = 100;
const IDLE_WINDOW: Duration = Duration::from_secs(5);
/// Set (to a socket path) when this binary runs as the Unix socket server.
const UDS_SERVER_ENV: &str = "REMOTEMEDIA_BENCH_UDS_SERVER";

fn manifest_text(node_type: &str) -> String {
    format!(
        r#"{{"version":"v1","metadata":{{"name":"rtt"}},"nodes":[{{"id":"pass","node_type":"{node_type}"}}],"connections":[]}}"#
    )
}

fn frame() -> TransportData {
    let samples: Vec<f32> = (0..960).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
    TransportData::new(RuntimeData::Audio(AudioBuffer::new(samples, 48_000, 1)))
}

/// How the frames are sent: back to back (each as soon as the last came back), or one per
/// `PACED_GAP`, as a live stream would (then every hop wakes a sleeping reader).
#[derive(Clone, Copy)]
enum Pace {
    BackToBack,
    Paced,
}

const PACED_GAP: Duration = Duration::from_millis(5);
const PACED_ROUNDS: usize = 600;

impl Pace {
    fn rounds(self) -> usize {
        match self {
            Self::BackToBack => ROUNDS,
            Self::Paced => PACED_ROUNDS,
        }
    }

    async fn gap(self) {
        if let Self::Paced = self {
            tokio::time::sleep(PACED_GAP).await;
        }
    }
}

/// Sends a frame and awaits its output, warm-up plus timed rounds; the timed rounds.
async fn round_trips(session: &dyn StreamSession, pace: Pace) -> Vec<Duration> {
    let input = frame();
    let mut rtts = Vec::with_capacity(pace.rounds());
    for i in 0..WARMUP + pace.rounds() {
        pace.gap().await;
        let started = Instant::now();
        session.send_input(input.clone()).await.expect("send");
        match session.recv_output().await.expect("receive") {
            Some(SessionOutput::Data { .. }) => {}
            other => panic!("expected the frame back, got {other:?}"),
        }
        if i >= WARMUP {
            rtts.push(started.elapsed());
        }
    }
    rtts
}

/// The baseline transport: length-prefixed pod-link messages over a Unix stream.
async fn uds_round_trips(stream: &mut UnixStream, pace: Pace) -> Vec<Duration> {
    let message = encode(&Envelope {
        session: 1,
        message: Message::Input(frame()),
    })
    .expect("encode");
    let mut reply = Vec::new();
    let mut rtts = Vec::with_capacity(pace.rounds());
    for i in 0..WARMUP + pace.rounds() {
        pace.gap().await;
        let started = Instant::now();
        write_frame(stream, &message).await;
        read_frame(stream, &mut reply).await.expect("a reply");
        match decode(&reply).expect("decode").message {
            Message::Output { .. } => {}
            other => panic!("expected the frame back, got {other:?}"),
        }
        if i >= WARMUP {
            rtts.push(started.elapsed());
        }
    }
    rtts
}

async fn write_frame(stream: &mut UnixStream, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("small message");
    stream.write_all(&len.to_le_bytes()).await.expect("write");
    stream.write_all(bytes).await.expect("write");
}

async fn read_frame(stream: &mut UnixStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    stream.read_exact(buf).await.ok()?;
    Some(())
}

/// The Unix socket server process: one connection, one PassThrough session, each Input
/// answered with its Output, as the worker does over iceoryx2.
fn uds_server(path: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::UnixListener::bind(path).expect("bind");
        let (mut stream, _) = listener.accept().await.expect("accept");
        let runner = PipelineRunner::new();
        let manifest = Manifest::from_text(
            &manifest_text("PassThrough"),
            Format::Json,
            runner.registry(),
        )
        .expect("manifest");
        let session = runner.create_stream_session(&manifest).expect("session");
        let mut buf = Vec::new();
        while read_frame(&mut stream, &mut buf).await.is_some() {
            let Message::Input(input) = decode(&buf).expect("decode").message else {
                panic!("expected Input")
            };
            session.send_input(input).await.expect("send");
            let Some(SessionOutput::Data { node_id, data }) =
                session.recv_output().await.expect("receive")
            else {
                panic!("expected data")
            };
            let reply = encode(&Envelope {
                session: 1,
                message: Message::Output {
                    node: node_id,
                    item: data,
                },
            })
            .expect("encode");
            write_frame(&mut stream, &reply).await;
        }
    });
}

/// Connects to a Unix socket server process started from this binary.
async fn start_uds_server(dir: &std::path::Path) -> (std::process::Child, UnixStream) {
    let path = dir.join("rtt.sock");
    let child = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env(UDS_SERVER_ENV, &path)
        .spawn()
        .expect("spawn the socket server");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match UnixStream::connect(&path).await {
            Ok(stream) => return (child, stream),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("socket server did not listen within 30 s: {e}"),
        }
    }
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(v[v.len() / 2]), us(v[v.len() * 99 / 100]))
}

fn report(
    title: &str,
    rounds: usize,
    subject: (&str, Vec<Duration>),
    baseline: (&str, Vec<Duration>),
) {
    let (s50, s99) = percentiles(subject.1);
    let (b50, b99) = percentiles(baseline.1);
    println!("{title} (2 x {rounds} rounds each after {WARMUP} warm-up):");
    println!("  {:<34} p50 {s50:8.1} us  p99 {s99:8.1} us", subject.0);
    println!("  {:<34} p50 {b50:8.1} us  p99 {b99:8.1} us", baseline.0);
    println!("  ratio p50 {:.2}  p99 {:.2}", s50 / b50, s99 / b99);
}

async fn pod_link() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("pass.json");
    std::fs::write(&manifest, manifest_text("PassThrough")).expect("write manifest");
    let worker = support::ServedWorker::start(&manifest, &support::unique_link("bench"));
    let client = IpcRunner::connect(
        LinkName::new(&worker.link).expect("link"),
        ClientOptions::default(),
    )
    .expect("client");
    let session = client.stream_served().await.expect("session");
    let (mut server, mut stream) = start_uds_server(dir.path()).await;

    for (pace, title) in [
        (
            Pace::BackToBack,
            "client -> worker process (PassThrough) -> client, back to back",
        ),
        (Pace::Paced, "the same, one frame per 5 ms"),
    ] {
        // Interleaved halves, so both see the same machine state.
        let (mut ice, mut uds) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            ice.extend(round_trips(&session, pace).await);
            uds.extend(uds_round_trips(&mut stream, pace).await);
        }
        report(
            title,
            pace.rounds(),
            ("iceoryx2 pod link", ice),
            ("Unix domain socket, same messages", uds),
        );
    }
    drop(stream);
    let _ = server.wait();

    // Idle: many open sessions, no traffic.
    let mut idle = Vec::with_capacity(IDLE_SESSIONS);
    for _ in 0..IDLE_SESSIONS {
        idle.push(client.stream_served().await.expect("idle session"));
    }
    worker.await_open_sessions(IDLE_SESSIONS + 1, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = worker.cpu_time();
    tokio::time::sleep(IDLE_WINDOW).await;
    let used = worker.cpu_time() - before;
    println!(
        "worker holding {} idle sessions: {:.2}% of a core over {IDLE_WINDOW:?}",
        IDLE_SESSIONS + 1,
        100.0 * used.as_secs_f64() / IDLE_WINDOW.as_secs_f64()
    );
}

async fn python_node() {
    let options = PythonOptions {
        interpreter: support::test_python().into(),
        ..PythonOptions::default()
    };
    let mut registry = NodeRegistry::with_builtins();
    PythonNodes::discover(options)
        .expect("Python node types (run scripts/python-env.sh)")
        .register(&mut registry);
    let runner = PipelineRunner::with_registry(registry);
    let open = |node_type: &str| {
        let manifest =
            Manifest::from_text(&manifest_text(node_type), Format::Json, runner.registry())
                .expect("manifest");
        Arc::new(runner.create_stream_session(&manifest).expect("session"))
    };
    let (python, rust) = (open("python:PassThrough"), open("PassThrough"));
    for (pace, title) in [
        (Pace::BackToBack, "through a PassThrough node, back to back"),
        (Pace::Paced, "the same, one frame per 5 ms"),
    ] {
        let (mut py, mut rs) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            py.extend(round_trips(python.as_ref(), pace).await);
            rs.extend(round_trips(rust.as_ref(), pace).await);
        }
        report(
            title,
            pace.rounds(),
            ("python:PassThrough (own process)", py),
            ("Rust PassThrough (in process)", rs),
        );
    }

    let children = support::children_matching("remotemedia_nodes");
    assert_eq!(children.len(), 1, "one Python node process");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = support::process_cpu_time(children[0]);
    tokio::time::sleep(IDLE_WINDOW).await;
    let used = support::process_cpu_time(children[0]) - before;
    println!(
        "idle Python node process: {:.2}% of a core over {IDLE_WINDOW:?}",
        100.0 * used.as_secs_f64() / IDLE_WINDOW.as_secs_f64()
    );
}

fn main() {
    if let Some(path) = std::env::var_os(UDS_SERVER_ENV) {
        return uds_server(path.to_str().expect("UTF-8 socket path"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(pod_link());
    runtime.block_on(python_node());
}
