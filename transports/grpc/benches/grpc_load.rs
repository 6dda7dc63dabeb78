//! gRPC streaming: round trip per 20 ms 48 kHz mono frame through a PassThrough pipeline
//! against a bare tonic echo of the same messages, and 500 concurrent sessions at 50 frames/s.
//! `make bench-grpc` runs it.
//!
//! Servers run as separate processes (this binary re-run in a server role), so their CPU is
//! theirs alone: `remotemedia-grpc --manifest` (in-process pipeline), the same with
//! `--connect` to a worker process, and the echo baseline. The round trip is also measured over
//! TLS (`--tls-cert`, a test CA) against the same server without, and so is opening a new
//! connection (the TLS handshake).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use remotemedia_grpc::convert::item_to_wire;
use remotemedia_grpc::pb::pipeline_service_client::PipelineServiceClient;
use remotemedia_grpc::pb::pipeline_service_server::{PipelineService, PipelineServiceServer};
use remotemedia_grpc::pb::{self, stream_request, stream_response};
use remotemedia_runtime_core::ipc::{LinkName, Worker, WorkerOptions};
use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::{AudioBuffer, PipelineRunner, RuntimeData, TransportData};
use remotemedia_server::test_pki::TestCa;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::{Request, Response, Status, Streaming};

const ROLE_ENV: &str = "REMOTEMEDIA_BENCH_ROLE";
const PASSTHROUGH: &str = r#"{"version":"v1","metadata":{"name":"pass"},"nodes":[{"id":"pass","node_type":"PassThrough"}],"connections":[]}"#;
const RTT_ROUNDS: usize = 5_000;
const WARMUP: usize = 500;
const SESSIONS: usize = 500;

/// [`SESSIONS`], or env `GRPC_BENCH_SESSIONS` (to find how many a server sustains).
fn sessions() -> usize {
    std::env::var("GRPC_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SESSIONS)
}
/// HTTP/2 connections the load's sessions share, one load per entry: [`SHARED_CONNECTIONS`]
/// (gRPC clients multiplex streams over a channel; ghz puts all its streams on one
/// connection unless told otherwise), then one per session (the most work for both sides).
/// Env `GRPC_BENCH_CONNECTIONS=N` runs only N.
fn connection_counts(sessions: usize) -> Vec<usize> {
    match std::env::var("GRPC_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) => vec![n.clamp(1, sessions)],
        None => vec![SHARED_CONNECTIONS.min(sessions), sessions],
    }
}
const SHARED_CONNECTIONS: usize = 10;
const FRAME_INTERVAL: Duration = Duration::from_millis(20);
const LOAD_WINDOW: Duration = Duration::from_secs(10);

/// Frame `sequence` of the load: the same samples every time, converted once, so the load
/// generator (which shares the two cores with the servers) spends its time on gRPC, not on
/// making audio. (Until run 5 it computed 960 `sin` per frame: 24 million a second at 500
/// sessions, most of the 0.5-0.7 core it used.)
fn frame_request(sequence: u64) -> pb::StreamRequest {
    static TEMPLATE: std::sync::OnceLock<pb::Item> = std::sync::OnceLock::new();
    let mut item = TEMPLATE
        .get_or_init(|| {
            let samples: Vec<f32> = (0..960).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
            let audio = AudioBuffer::new(samples, 48_000, 1);
            item_to_wire(&TransportData::new(RuntimeData::Audio(audio)))
        })
        .clone();
    item.sequence = Some(sequence);
    pb::StreamRequest {
        kind: Some(stream_request::Kind::Input(item)),
    }
}

fn open_request() -> pb::StreamRequest {
    pb::StreamRequest {
        kind: Some(stream_request::Kind::Open(pb::Open::default())),
    }
}

// ---- server roles -------------------------------------------------------------------------

/// The baseline: answers `open` with `ready` and echoes each input as a result, no session.
struct Echo;

#[tonic::async_trait]
impl PipelineService for Echo {
    async fn execute(
        &self,
        _: Request<pb::ExecuteRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        Err(Status::unimplemented("echo only streams"))
    }

    type StreamStream = ReceiverStream<Result<pb::StreamResponse, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<pb::StreamRequest>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(32);
        tokio::spawn(async move {
            while let Some(Ok(message)) = inbound.next().await {
                let kind = match message.kind {
                    Some(stream_request::Kind::Open(_)) => {
                        stream_response::Kind::Ready(pb::Ready::default())
                    }
                    Some(stream_request::Kind::Input(item)) => {
                        stream_response::Kind::Result(pb::Result {
                            node_id: "pass".to_owned(),
                            item: Some(item),
                        })
                    }
                    _ => continue,
                };
                if tx
                    .send(Ok(pb::StreamResponse { kind: Some(kind) }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn list_node_types(
        &self,
        _: Request<pb::ListNodeTypesRequest>,
    ) -> Result<Response<pb::ListNodeTypesResponse>, Status> {
        Err(Status::unimplemented("echo"))
    }

    async fn get_version(
        &self,
        _: Request<pb::GetVersionRequest>,
    ) -> Result<Response<pb::VersionInfo>, Status> {
        Err(Status::unimplemented("echo"))
    }
}

fn run_role(role: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if let Some(link) = role.strip_prefix("worker:") {
            let manifest =
                Manifest::from_text(PASSTHROUGH, Format::Json, PipelineRunner::new().registry())
                    .unwrap();
            let worker = Worker::bind(
                LinkName::new(link).unwrap(),
                PipelineRunner::new(),
                manifest,
                WorkerOptions::default(),
            )
            .unwrap();
            println!("ready");
            worker
                .serve(remotemedia_runtime_core::shutdown::requested())
                .await
                .unwrap();
        } else {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!("{}", listener.local_addr().unwrap());
            tonic::transport::Server::builder()
                .add_service(PipelineServiceServer::new(Echo))
                .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
                .await
                .unwrap();
        }
    });
}

// ---- the measuring side -------------------------------------------------------------------

struct Process {
    child: Child,
    addr: Option<SocketAddr>,
}

impl Drop for Process {
    /// SIGTERM first, so the servers leave no iceoryx2 state behind for the next process to
    /// clean up (a killed worker leaves every session's services); SIGKILL if that fails.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU time of process `pid` so far.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// The first line the server prints that `pick` accepts (others, like iceoryx2's config
/// notice, are skipped); the rest keeps being drained so the server never blocks on a pipe.
fn line_where<T>(child: &mut Child, from_stderr: bool, pick: impl Fn(&str) -> Option<T>) -> T {
    use std::io::{BufRead, BufReader, Read};
    let stream: Box<dyn Read + Send> = if from_stderr {
        Box::new(child.stderr.take().unwrap())
    } else {
        Box::new(child.stdout.take().unwrap())
    };
    let mut lines = BufReader::new(stream).lines();
    loop {
        let line = lines
            .next()
            .expect("the server said what it serves")
            .unwrap();
        if let Some(found) = pick(&line) {
            std::thread::spawn(move || for _ in lines {});
            return found;
        }
    }
}

fn echo_server() -> Process {
    let child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE_ENV, "echo")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut process = Process { child, addr: None };
    process.addr = Some(line_where(&mut process.child, false, |l| l.parse().ok()));
    process
}

fn worker(link: &str) -> Process {
    let child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE_ENV, format!("worker:{link}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut process = Process { child, addr: None };
    line_where(&mut process.child, false, |l| (l == "ready").then_some(()));
    process
}

fn grpc_server(args: &[&str]) -> Process {
    // Env `GRPC_BENCH_SERVER_BIN` runs another build of the server (to compare two builds
    // under the same load, since this VM's figures drift between sessions).
    let binary = std::env::var_os("GRPC_BENCH_SERVER_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_remotemedia-grpc").into());
    let child = Command::new(binary)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--max-sessions",
            "2000",
            "--drain-seconds",
            "2",
        ])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut process = Process { child, addr: None };
    process.addr = Some(line_where(&mut process.child, true, |l| {
        l.strip_prefix("serving gRPC on ")
            .and_then(|r| r.split(' ').next())
            .and_then(|a| a.parse().ok())
    }));
    process
}

async fn connect(addr: SocketAddr) -> PipelineServiceClient<Channel> {
    connect_with(addr, None).await
}

/// A client of `addr`, over TLS trusting `ca` (PEM) when given; the server's certificate
/// names `localhost`.
async fn connect_with(addr: SocketAddr, ca: Option<&str>) -> PipelineServiceClient<Channel> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let scheme = if ca.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://{addr}")).unwrap();
    if let Some(ca) = ca {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name("localhost");
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    loop {
        match endpoint.connect().await {
            Ok(channel) => return PipelineServiceClient::new(channel),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("connect {addr}: {e}"),
        }
    }
}

/// How long `count` new connections take to open and answer their first stream (ms each).
async fn connection_setups(addr: SocketAddr, ca: Option<&str>, count: usize) -> Vec<Duration> {
    let mut took = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let mut client = connect_with(addr, ca).await;
        let (tx, mut responses) = open_stream(&mut client).await;
        tx.send(frame_request(0)).await.unwrap();
        responses.message().await.unwrap().unwrap();
        took.push(started.elapsed());
    }
    took
}

/// A stream on `client`, ready for frames; retried while a `--connect` sidecar finds its worker.
async fn open_stream(
    client: &mut PipelineServiceClient<Channel>,
) -> (
    mpsc::Sender<pb::StreamRequest>,
    Streaming<pb::StreamResponse>,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (tx, rx) = mpsc::channel(4);
        tx.send(open_request()).await.unwrap();
        match client.stream(ReceiverStream::new(rx)).await {
            Ok(response) => {
                let mut responses = response.into_inner();
                let ready = responses.message().await.unwrap().unwrap();
                assert!(matches!(ready.kind, Some(stream_response::Kind::Ready(_))));
                return (tx, responses);
            }
            Err(status) if Instant::now() < deadline => {
                let _ = status;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("open: {status:?}"),
        }
    }
}

async fn round_trips(addr: SocketAddr, rounds: usize) -> Vec<Duration> {
    round_trips_with(addr, None, rounds).await
}

async fn round_trips_with(addr: SocketAddr, ca: Option<&str>, rounds: usize) -> Vec<Duration> {
    let mut client = connect_with(addr, ca).await;
    let (tx, mut responses) = open_stream(&mut client).await;
    let mut rtts = Vec::with_capacity(rounds);
    for i in 0..WARMUP + rounds {
        let started = Instant::now();
        tx.send(frame_request(i as u64)).await.unwrap();
        responses.message().await.unwrap().unwrap();
        if i >= WARMUP {
            rtts.push(started.elapsed());
        }
    }
    rtts
}

/// What one load measured: every round trip, and CPU (in cores) over the load window.
struct Load {
    rtts: Vec<Duration>,
    server_cpu: f64,
    worker_cpu: Option<f64>,
    generator_cpu: f64,
}

/// `SESSIONS` sessions spread over `connections` connections, each sending a frame every
/// 20 ms and timing its echo; `behind` is the worker behind a `--connect` server.
async fn load(server: &Process, behind: Option<&Process>, connections: usize) -> Load {
    let addr = server.addr.unwrap();
    let count = sessions();
    let mut sessions = Vec::with_capacity(count);
    let opening = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(connect(addr).await);
    }
    for s in 0..count {
        let shared = clients.len();
        let client = &mut clients[s % shared];
        sessions.push(open_stream(client).await);
    }
    println!(
        "    opened {count} sessions one after another in {:.2?}; load window starts",
        opening.elapsed()
    );
    // The server, the worker behind it, and this process (the load generator).
    let pids = [
        Some(server.child.id()),
        behind.map(|w| w.child.id()),
        Some(std::process::id()),
    ];
    let cpu_before = pids.map(|pid| pid.map(cpu_of));
    let started = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(s, (tx, mut responses))| {
            tokio::spawn(async move {
                // Spread the sessions over the 20 ms period, as independent clients would be.
                tokio::time::sleep(FRAME_INTERVAL * s as u32 / count as u32).await;
                let mut ticks = tokio::time::interval(FRAME_INTERVAL);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut rtts = Vec::new();
                let mut i = 0;
                while started.elapsed() < LOAD_WINDOW {
                    ticks.tick().await;
                    let sent = Instant::now();
                    tx.send(frame_request(i)).await.unwrap();
                    responses.message().await.unwrap().unwrap();
                    rtts.push(sent.elapsed());
                    i += 1;
                }
                rtts
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let window = started.elapsed().as_secs_f64();
    let [server_cpu, worker_cpu, generator_cpu] = std::array::from_fn(|i| {
        pids[i]
            .zip(cpu_before[i])
            .map(|(pid, before)| (cpu_of(pid) - before).as_secs_f64() / window)
    });
    Load {
        rtts: all,
        server_cpu: server_cpu.unwrap_or_default(),
        worker_cpu,
        generator_cpu: generator_cpu.unwrap_or_default(),
    }
}

fn pct(mut v: Vec<Duration>) -> (f64, f64, usize) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[v.len() / 2]), ms(v[v.len() * 99 / 100]), v.len())
}

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        return run_role(&role);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("rm-grpc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("pass.json");
    std::fs::write(&manifest, PASSTHROUGH).unwrap();
    let link = format!("bench-{}", std::process::id());

    let ca = TestCa::new("bench CA");
    let files = ca.write_server_files(&dir, &["localhost", "127.0.0.1"]);
    let echo = echo_server();
    let grpc = grpc_server(&["--manifest", manifest.to_str().unwrap()]);
    let grpc_tls = grpc_server(&[
        "--manifest",
        manifest.to_str().unwrap(),
        "--tls-cert",
        files.cert.to_str().unwrap(),
        "--tls-key",
        files.key.to_str().unwrap(),
    ]);
    let worker = worker(&link);
    let sidecar = grpc_server(&["--connect", &link]);

    runtime.block_on(async {
        let (mut e, mut g, mut s, mut t) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut plain_setup, mut tls_setup) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            e.extend(round_trips(echo.addr.unwrap(), RTT_ROUNDS / 2).await);
            g.extend(round_trips(grpc.addr.unwrap(), RTT_ROUNDS / 2).await);
            t.extend(round_trips_with(grpc_tls.addr.unwrap(), Some(ca.pem()), RTT_ROUNDS / 2).await);
            s.extend(round_trips(sidecar.addr.unwrap(), RTT_ROUNDS / 2).await);
            plain_setup.extend(connection_setups(grpc.addr.unwrap(), None, 50).await);
            tls_setup.extend(connection_setups(grpc_tls.addr.unwrap(), Some(ca.pem()), 50).await);
        }
        let (g50, g99, _) = pct(g.clone());
        let (t50, t99, _) = pct(t);
        println!(
            "TLS: round trip over TLS p50 {t50:.3}  p99 {t99:.3} ms against the same server without \
             p50 {g50:.3}  p99 {g99:.3} ms (x{:.2} / x{:.2})",
            t50 / g50,
            t99 / g99
        );
        let (ps50, ps99, _) = pct(plain_setup);
        let (ts50, ts99, _) = pct(tls_setup);
        println!(
            "TLS: a new connection to its first answer (100 each) p50 {ts50:.3}  p99 {ts99:.3} ms \
             against plain p50 {ps50:.3}  p99 {ps99:.3} ms (x{:.2})",
            ts50 / ps50
        );
        if std::env::var("GRPC_BENCH_ONLY").is_ok_and(|v| v == "tls") {
            return;
        }
        println!("streaming round trip of one 20 ms 48 kHz mono frame ({RTT_ROUNDS} rounds each, ms):");
        let (e50, e99, _) = pct(e);
        for (name, v) in [("remotemedia-grpc --manifest", g), ("remotemedia-grpc --connect", s)] {
            let (p50, p99, _) = pct(v);
            println!("  {name:<30} p50 {p50:.3}  p99 {p99:.3}  (x{:.2} / x{:.2} the echo)", p50 / e50, p99 / e99);
        }
        println!("  {:<30} p50 {e50:.3}  p99 {e99:.3}", "bare tonic echo");

        // GRPC_BENCH_LOAD=connect (a substring of the names) runs only that load, e.g. to profile it.
        let only = std::env::var("GRPC_BENCH_LOAD").unwrap_or_default();
        let count = sessions();
        for connections in connection_counts(count) {
            println!("{count} sessions at 50 frames/s for {LOAD_WINDOW:?} over {connections} connections (ms; CPU in cores over the window):");
            for (name, server, behind) in [
                ("bare tonic echo", &echo, None),
                ("remotemedia-grpc --manifest", &grpc, None),
                ("remotemedia-grpc --connect", &sidecar, Some(&worker)),
            ] {
                if !name.contains(only.as_str()) {
                    continue;
                }
                let load = load(server, behind, connections).await;
                let (p50, p99, n) = pct(load.rtts);
                let worker_cpu = load.worker_cpu.map(|w| format!(" + worker {w:.2}")).unwrap_or_default();
                println!(
                    "  {name:<30} p50 {p50:.3}  p99 {p99:.3}  frames {n}  server CPU {:.2}{worker_cpu}  load generator {:.2}",
                    load.server_cpu, load.generator_cpu
                );
            }
        }
    });
    let _ = std::fs::remove_dir_all(dir);
}
