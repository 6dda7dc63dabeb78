//! Helpers for tests that run the `remotemedia-runtime` binary as a worker process.

#![allow(dead_code)] // each test binary uses its own subset

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The CLI binary built for these tests.
pub(crate) fn runtime_bin() -> &'static str {
    env!("CARGO_BIN_EXE_remotemedia-runtime")
}

/// `examples/pipelines/<name>` in the repository.
pub(crate) fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/pipelines")
        .join(name)
}

/// Awaits `future`, failing the test with `what` if it takes longer than `limit`: a lost
/// message shows up as a named failure, not a hung CI run.
pub(crate) async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {limit:?}"),
    }
}

/// A link name no other test (or test run) uses.
pub(crate) fn unique_link(tag: &str) -> String {
    format!(
        "t-{tag}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A `remotemedia-runtime serve` process, killed and reaped on drop.
pub(crate) struct ServedWorker {
    child: Child,
    pub(crate) link: String,
    pub(crate) metrics: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl ServedWorker {
    /// Starts a worker serving `manifest` on `link` and waits until it says it serves.
    pub(crate) fn start(manifest: &Path, link: &str) -> Self {
        Self::start_with(manifest, link, &[])
    }

    /// As [`ServedWorker::start`], with extra environment variables.
    pub(crate) fn start_with(manifest: &Path, link: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(runtime_bin())
            .args(["serve", "--manifest"])
            .arg(manifest)
            .args(["--name", link, "--metrics-listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the worker");
        let stderr = lines_of(child.stderr.take().expect("piped stderr"));
        let mut metrics = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("worker on {link} did not start within 30 s"));
            if let Some(addr) = line
                .strip_prefix("metrics on http://")
                .and_then(|rest| rest.strip_suffix("/metrics"))
            {
                metrics = Some(addr.parse().expect("metrics address"));
            }
            if line.starts_with("serving pipeline") {
                break;
            }
        }
        Self {
            child,
            link: link.to_owned(),
            metrics: metrics.expect("the worker printed its metrics address"),
            stderr,
        }
    }

    /// The worker's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the worker with SIGKILL (no cleanup of any kind) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit; returns its stderr lines since startup.
    pub(crate) fn terminate(&mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait for the worker");
        assert!(exit.success(), "worker exited with {exit}");
        self.stderr.try_iter().collect()
    }

    /// Value of an unlabelled-or-labelled gauge/counter line starting with `name`.
    pub(crate) fn metric(&self, name: &str) -> Option<f64> {
        let body = http_get(self.metrics, "/metrics");
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Sessions the worker holds open.
    pub(crate) fn open_sessions(&self) -> usize {
        self.metric("remotemedia_ipc_sessions_open").unwrap_or(-1.0) as usize
    }

    /// Waits until `open_sessions() == n`; returns how long that took.
    pub(crate) fn await_open_sessions(&self, n: usize, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let now = self.open_sessions();
            if now == n {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "worker still holds {now} sessions after {within:?} (expected {n})"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// User + system CPU time the worker process has used.
    pub(crate) fn cpu_time(&self) -> Duration {
        process_cpu_time(self.pid())
    }
}

impl Drop for ServedWorker {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the worker said, which is usually the why.
        if std::thread::panicking() {
            for line in self.stderr.try_iter() {
                eprintln!("worker {}: {line}", self.link);
            }
        }
    }
}

/// Forwards a stream's lines to a channel from a background thread (which also keeps the
/// pipe drained, so the child never blocks on a full stderr).
pub(crate) fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The body of a plain HTTP GET.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// User + system CPU time of a process, from /proc (clock ticks of 10 ms).
pub(crate) fn process_cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Writes 3 s of 48 kHz stereo: a 440 Hz tone with a silent stretch in the middle.
pub(crate) fn write_wav(path: &Path) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..144_000u32 {
        let silent = (60_000..88_800).contains(&i);
        let v = if silent {
            0.0
        } else {
            (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 48_000.0).sin() * 0.5
        };
        let s = (v * 32767.0) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

/// The Python interpreter with `remotemedia_nodes`, the example nodes and numpy installed:
/// env `REMOTEMEDIA_TEST_PYTHON`, else the venv `scripts/python-env.sh` makes (which
/// `make test` runs first).
pub(crate) fn test_python() -> PathBuf {
    if let Some(python) = std::env::var_os("REMOTEMEDIA_TEST_PYTHON") {
        return python.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    let venv = Path::new(&home).join(".cache/remotemedia/venv-py-v1/bin/python");
    assert!(
        venv.exists(),
        "Python node tests need an interpreter with the packages installed: run \
         scripts/python-env.sh (or set REMOTEMEDIA_TEST_PYTHON)"
    );
    venv
}

/// Environment for Python node processes that loads the test node types
/// (`tests/python/remotemedia_test_nodes.py`).
pub(crate) fn test_python_env() -> Vec<(String, String)> {
    vec![
        (
            "REMOTEMEDIA_PYTHON_MODULES".to_owned(),
            "remotemedia_test_nodes".to_owned(),
        ),
        (
            "PYTHONPATH".to_owned(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python").to_owned(),
        ),
    ]
}

/// Pids of live child processes of this process whose command line contains `needle`
/// (zombies count: they are not reaped yet).
pub(crate) fn children_matching(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesized command name: state, ppid, ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(me) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

/// True once process `pid` is gone and reaped (a zombie still has its `/proc` entry).
pub(crate) fn reaped(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// `remotemedia-runtime <args>` with `env` added, asserting success; its output.
pub(crate) fn run_cli_with(
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> std::process::Output {
    let out = Command::new(runtime_bin())
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "error")
        .output()
        .expect("run remotemedia-runtime");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
