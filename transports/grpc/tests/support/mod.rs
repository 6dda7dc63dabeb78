//! What the binary's tests share: the server as a child process, a worker on a fresh pod
//! link in the test's process, and the third-party tools they drive.

#![allow(dead_code, unreachable_pub)] // each test binary uses its own subset

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use remotemedia_grpc::pb::pipeline_service_client::PipelineServiceClient;
use remotemedia_grpc::pb::{self, stream_request, stream_response};
use remotemedia_runtime_core::PipelineRunner;
use remotemedia_runtime_core::ipc::{LinkName, Worker, WorkerHandle, WorkerOptions};
use remotemedia_runtime_core::manifest::{Format, Manifest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// How long anything a test awaits may take.
pub const LIMIT: Duration = Duration::from_secs(30);

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/pipelines")
        .join(name)
}

/// A `remotemedia-grpc` process, killed and reaped on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub stderr: std::sync::mpsc::Receiver<String>,
}

impl Server {
    pub fn start(args: &[&str]) -> Self {
        Self::start_on("127.0.0.1:0", args)
    }

    /// Started with `--listen listen`.
    pub fn start_on(listen: &str, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_remotemedia-grpc"))
            .args(["--listen", listen])
            .args(args)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn remotemedia-grpc");
        let stderr = lines_of(child.stderr.take().unwrap());
        let (mut addr, mut metrics) = (None, None);
        let deadline = Instant::now() + LIMIT;
        while addr.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = stderr
                .recv_timeout(left)
                .expect("the server started in time");
            if let Some(rest) = line.strip_prefix("metrics on http://") {
                metrics = rest.strip_suffix("/metrics").map(|a| a.parse().unwrap());
            }
            if let Some(rest) = line.strip_prefix("serving gRPC on ") {
                addr = Some(rest.split(' ').next().unwrap().parse().unwrap());
            }
        }
        Self {
            child,
            addr: addr.unwrap(),
            metrics,
            stderr,
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            for line in self.stderr.try_iter() {
                eprintln!("server: {line}");
            }
        }
    }
}

pub fn lines_of(stream: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A worker serving the example calculator pipeline on a fresh link, in this process.
pub struct LinkedWorker {
    pub link: String,
    /// Its open sessions.
    pub handle: WorkerHandle,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), remotemedia_runtime_core::ipc::WorkerError>>,
}

impl LinkedWorker {
    pub fn start(runner: PipelineRunner) -> Self {
        let link = format!(
            "t-grpc-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let manifest = Manifest::from_text(
            &std::fs::read_to_string(example("calculator.json")).unwrap(),
            Format::Json,
            runner.registry(),
        )
        .unwrap();
        let worker = Worker::bind(
            LinkName::new(&link).unwrap(),
            runner,
            manifest,
            WorkerOptions::default(),
        )
        .unwrap();
        let handle = worker.handle();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(worker.serve(async {
            let _ = stopped.await;
        }));
        Self {
            link,
            handle,
            stop,
            serving,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.serving.await.unwrap().unwrap();
    }
}

/// grpcurl: env `REMOTEMEDIA_GRPCURL`, else on `PATH` or in `~/go/bin` (`make test` installs
/// it with `go install`).
pub fn grpcurl() -> PathBuf {
    if let Some(path) = std::env::var_os("REMOTEMEDIA_GRPCURL") {
        return path.into();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    for candidate in [
        home.join("go/bin/grpcurl"),
        PathBuf::from("/usr/local/bin/grpcurl"),
    ] {
        if candidate.exists() {
            return candidate;
        }
    }
    panic!(
        "grpcurl is needed: run scripts/grpc-tools.sh (go install, cached) \
         (or set REMOTEMEDIA_GRPCURL)"
    );
}

/// The interpreter with grpcio installed (`scripts/python-env.sh`, which `make test` runs).
pub fn test_python() -> PathBuf {
    if let Some(python) = std::env::var_os("REMOTEMEDIA_TEST_PYTHON") {
        return python.into();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let venv = home.join(".cache/remotemedia/venv-py-v1/bin/python");
    assert!(
        venv.exists(),
        "the Python client test needs grpcio: run scripts/python-env.sh (or set REMOTEMEDIA_TEST_PYTHON)"
    );
    venv
}

/// A stream's request sender and its responses.
pub type Stream = (
    mpsc::Sender<pb::StreamRequest>,
    tonic::Streaming<pb::StreamResponse>,
);

/// A stream on `manifest` (empty: the served pipeline), answered `ready`.
pub async fn open_stream(
    mut client: PipelineServiceClient<tonic::transport::Channel>,
    manifest: &str,
) -> Stream {
    let (tx, rx) = mpsc::channel(4);
    let kind = stream_request::Kind::Open(pb::Open {
        manifest: manifest.to_owned(),
    });
    tx.send(pb::StreamRequest { kind: Some(kind) })
        .await
        .unwrap();
    let mut responses = client
        .stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let ready = responses.message().await.unwrap().unwrap();
    assert!(matches!(ready.kind, Some(stream_response::Kind::Ready(_))));
    (tx, responses)
}
