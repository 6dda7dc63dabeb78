//! Clients that stop without saying so, against the `--connect` sidecar in front of a worker:
//! one that stops reading its responses, and one whose network vanishes mid-stream (a
//! half-open connection: its packets are dropped in a network namespace of its own). Either
//! way the sidecar's session slot comes back, and the worker's session ends, within the
//! configured time.

mod support;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use remotemedia_grpc::convert::item_to_wire;
use remotemedia_grpc::pb::pipeline_service_client::PipelineServiceClient;
use remotemedia_grpc::pb::{self, stream_request};
use remotemedia_runtime_core::ipc::WorkerHandle;
use remotemedia_runtime_core::{AudioBuffer, PipelineRunner, RuntimeData, TransportData};
use support::{LIMIT, LinkedWorker, Server, Stream, grpcurl, http_get, lines_of, open_stream};
use tonic::Code;

const PASS_THROUGH: &str = r#"{"version":"v1","metadata":{"name":"pass"},"nodes":[{"id":"pass","node_type":"PassThrough"}],"connections":[]}"#;

/// The sidecar's open sessions, from its metrics.
fn sidecar_sessions(server: &Server) -> u64 {
    let metrics = http_get(server.metrics.expect("metrics are served"), "/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("remotemedia_grpc_open_sessions "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no open-sessions gauge in {metrics}"))
}

/// Waits until both the sidecar and the worker count `want` sessions; the time it took.
async fn await_sessions(server: &Server, worker: &WorkerHandle, want: u64) -> Duration {
    let started = Instant::now();
    loop {
        let (sidecar, worker) = (sidecar_sessions(server), worker.open_sessions() as u64);
        if sidecar == want && worker == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < LIMIT,
            "sessions: sidecar {sidecar}, worker {worker}; wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_frees_its_slot_and_the_workers_session() {
    let worker = LinkedWorker::start(PipelineRunner::new());
    let server = Server::start(&[
        "--connect",
        &worker.link,
        "--metrics-listen",
        "127.0.0.1:0",
        "--allow-client-manifests",
        "--stall-timeout-secs",
        "1",
    ]);
    let client = PipelineServiceClient::new(server.channel().await);
    let (tx, mut responses) = open_stream(client, PASS_THROUGH).await;
    await_sessions(&server, &worker.handle, 1).await;

    // One second of audio after another, and not one response read.
    let second = RuntimeData::Audio(AudioBuffer::new(vec![0.25; 48_000], 48_000, 1));
    let feeding = tokio::spawn(async move {
        for sequence in 0.. {
            let item = TransportData::new(second.clone()).with_sequence(sequence);
            let input = stream_request::Kind::Input(item_to_wire(&item));
            if tx
                .send(pb::StreamRequest { kind: Some(input) })
                .await
                .is_err()
            {
                return;
            }
        }
    });
    await_sessions(&server, &worker.handle, 0).await;
    let status = loop {
        match tokio::time::timeout(LIMIT, responses.message())
            .await
            .unwrap()
        {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("read no response for 1s"),
        "{status:?}"
    );
    feeding.abort();
    worker.stop().await;
}

/// A stream on the served pipeline, answered `ready`.
async fn open_served(client: PipelineServiceClient<tonic::transport::Channel>) -> Stream {
    open_stream(client, "").await
}

/// Streams beyond `--max-streams-per-connection` on one connection wait (HTTP/2
/// MAX_CONCURRENT_STREAMS) instead of opening sessions: one client connection cannot take every
/// slot. The waiting stream opens once another ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_per_connection_cap_wait_for_one_to_end() {
    let worker = LinkedWorker::start(PipelineRunner::new());
    let server = Server::start(&[
        "--connect",
        &worker.link,
        "--metrics-listen",
        "127.0.0.1:0",
        "--max-streams-per-connection",
        "2",
    ]);
    let client = PipelineServiceClient::new(server.channel().await);
    let first = open_served(client.clone()).await;
    let _second = open_served(client.clone()).await;
    await_sessions(&server, &worker.handle, 2).await;
    let third = tokio::spawn(open_served(client));
    // The third waits for a stream slot on the connection: no session for it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third stream opened on a 2-stream connection"
    );
    assert_eq!(sidecar_sessions(&server), 2);
    drop(first);
    let _third = tokio::time::timeout(LIMIT, third)
        .await
        .expect("the third stream opened once the first ended")
        .unwrap();
    await_sessions(&server, &worker.handle, 2).await;
    worker.stop().await;
}

/// A network namespace joined to this one by a veth pair: the test's side is `HOST`, the
/// namespace's side `CLIENT`. Deleted on drop.
struct Netns {
    name: String,
    inner_link: String,
    outer_link: String,
}

impl Netns {
    const HOST: &str = "10.213.77.1";
    const CLIENT: &str = "10.213.77.2";

    fn create() -> Self {
        assert!(
            is_root(),
            "this test makes a network namespace and needs root (make test runs as root)"
        );
        let tag = std::process::id() % 100_000;
        let netns = Self {
            name: format!("rm-half-open-{tag}"),
            inner_link: format!("rmc{tag}"),
            outer_link: format!("rmh{tag}"),
        };
        let outer = netns.outer_link.clone();
        let ns = netns.name.as_str();
        ip(&["netns", "add", ns]);
        ip(&[
            "link",
            "add",
            &outer,
            "type",
            "veth",
            "peer",
            "name",
            &netns.inner_link,
        ]);
        ip(&["link", "set", &netns.inner_link, "netns", ns]);
        ip(&["addr", "add", &format!("{}/30", Self::HOST), "dev", &outer]);
        ip(&["link", "set", &outer, "up"]);
        netns.exec_ip(&[
            "addr",
            "add",
            &format!("{}/30", Self::CLIENT),
            "dev",
            &netns.inner_link,
        ]);
        netns.exec_ip(&["link", "set", &netns.inner_link, "up"]);
        netns.exec_ip(&["link", "set", "lo", "up"]);
        netns
    }

    fn exec_ip(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }

    fn command(&self, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// From now on nothing leaves or reaches the namespace, and nobody there is told.
    fn cut_off(&self) {
        self.exec_ip(&["link", "set", &self.inner_link, "down"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end deletes the pair (the namespace alone may outlive its name for a
        // while, with sockets of the killed client still in it).
        let _ = Command::new("ip")
            .args(["link", "del", &self.outer_link])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A child killed and reaped on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_connection_is_dropped_by_keepalive_with_its_sessions() {
    let netns = Netns::create();
    let worker = LinkedWorker::start(PipelineRunner::new());
    // Long idle and stall deadlines: only keepalive can notice this client is gone.
    let server = Server::start_on(
        &format!("{}:0", Netns::HOST),
        &[
            "--connect",
            &worker.link,
            "--metrics-listen",
            "127.0.0.1:0",
            "--keepalive-secs",
            "1",
            "--keepalive-timeout-secs",
            "1",
            "--idle-timeout-secs",
            "600",
            "--stall-timeout-secs",
            "600",
        ],
    );
    // grpcurl, a third-party client, in the namespace: it opens a stream on the served
    // pipeline and then waits for more input on its stdin.
    let mut grpcurl = Killed(
        netns
            .command(&grpcurl())
            .args(["-plaintext", "-d", "@"])
            .arg(server.addr.to_string())
            .arg("remotemedia.v1.PipelineService/Stream")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn grpcurl"),
    );
    let mut stdin = grpcurl.0.stdin.take().unwrap();
    writeln!(stdin, r#"{{"open": {{}}}}"#).unwrap();
    stdin.flush().unwrap();
    let stdout = lines_of(grpcurl.0.stdout.take().unwrap());
    // Pretty-printed JSON, a line at a time: the first response is `ready`.
    let started = Instant::now();
    loop {
        let left = LIMIT.saturating_sub(started.elapsed());
        let line = stdout.recv_timeout(left).expect("grpcurl printed `ready`");
        if line.contains("\"ready\"") {
            break;
        }
    }
    await_sessions(&server, &worker.handle, 1).await;

    netns.cut_off();
    let freed = await_sessions(&server, &worker.handle, 0).await;
    assert!(
        grpcurl.0.try_wait().unwrap().is_none(),
        "the client is still there: it was never told"
    );
    eprintln!("the half-open connection's session was gone {freed:?} after the cut");
    // Keepalive 1 s plus its timeout 1 s, and room for a loaded machine; nothing else (idle
    // and stall deadlines are 10 minutes) could have freed it.
    assert!(freed < Duration::from_secs(10), "{freed:?}");
    drop(stdin);
    worker.stop().await;
}
