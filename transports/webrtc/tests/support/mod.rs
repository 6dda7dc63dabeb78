//! A `remotemedia-webrtc` process and the clients the tests drive it with.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long anything the tests wait for may take.
pub const LIMIT: Duration = Duration::from_secs(30);

/// An example pipeline's path.
pub fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/pipelines")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A `remotemedia-webrtc` process on loopback, killed and reaped on drop.
pub struct Server {
    child: Child,
    /// `http` or `https` (with `--tls-cert`).
    pub scheme: &'static str,
    pub http: SocketAddr,
    /// The one UDP port of every session's media.
    pub media: SocketAddr,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    pub fn start(args: &[&str]) -> Self {
        Self::start_on("127.0.0.1", args)
    }

    /// Started with `--listen IP:0`.
    pub fn start_on(ip: &str, args: &[&str]) -> Self {
        Self::start_listening(&format!("{ip}:0"), args)
    }

    /// Started with `--listen ADDRESS`.
    pub fn start_listening(address: &str, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_remotemedia-webrtc"))
            .args(["--listen", address, "--udp-port", "0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn remotemedia-webrtc");
        let stderr = lines_of(child.stderr.take().unwrap());
        let deadline = Instant::now() + LIMIT;
        let mut seen = Vec::new();
        let (scheme, http, media) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the server did not start: {seen:?}"));
            let served = line.strip_prefix("serving WHIP on ").and_then(|rest| {
                rest.strip_prefix("http://")
                    .map(|r| ("http", r))
                    .or_else(|| rest.strip_prefix("https://").map(|r| ("https", r)))
            });
            if let Some((scheme, rest)) = served {
                let http = rest.split('/').next().unwrap().parse().unwrap();
                let media = rest
                    .split("media on udp ")
                    .nth(1)
                    .and_then(|m| m.split(' ').next())
                    .unwrap()
                    .parse()
                    .unwrap();
                break (scheme, http, media);
            }
            seen.push(line);
        };
        Self {
            child,
            scheme,
            http,
            media,
            stderr,
            seen,
        }
    }

    /// CPU time the server process has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which may hold spaces): utime and stime are the
        // 12th and 13th, in clock ticks (100 a second on Linux).
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<u64> = after
            .split(' ')
            .skip(11)
            .take(2)
            .map(|f| f.parse().unwrap())
            .collect();
        Duration::from_millis((fields[0] + fields[1]) * 10)
    }

    pub fn url(&self) -> String {
        format!("{}://{}/whip", self.scheme, self.http)
    }

    /// The value of one sample of `/metrics` (`name{labels}` as printed), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        let (_, _, text) = http(self, "GET", "/metrics", "", b"");
        text.lines()
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().unwrap())
            })
            .unwrap_or(0.0)
    }

    pub fn await_metric(&self, series: &str, want: f64) {
        self.await_metric_within(series, want, LIMIT);
    }

    pub fn await_metric_within(&self, series: &str, want: f64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let got = self.metric(series);
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{series} stayed {got}, wanted {want} within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn await_stderr(&mut self, needle: &str) {
        let deadline = Instant::now() + LIMIT;
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no {needle:?} on stderr: {:?}", self.seen),
            }
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
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
        // A failing test shows what the server said (RUST_LOG=warn: its warnings).
        if std::thread::panicking() {
            for line in self.seen.iter().cloned().chain(self.stderr.try_iter()) {
                eprintln!("[server] {line}");
            }
        }
    }
}

fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            eprintln!("[server] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// One HTTP/1.1 request: status, headers (lower-case names), body.
pub fn http(
    server: &Server,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, HashMap<String, String>, String) {
    http_as(server, None, method, path, content_type, body)
}

/// The same with `authorization: Bearer <token>` when `token` is given.
pub fn http_as(
    server: &Server,
    token: Option<&str>,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, HashMap<String, String>, String) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if !content_type.is_empty() {
        headers.push(("Content-Type", content_type));
    }
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer.as_str()));
    }
    request(server, method, path, &headers, body)
}

/// One HTTP/1.1 request with these headers.
pub fn request(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, HashMap<String, String>, String) {
    let mut stream = std::net::TcpStream::connect(server.http).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body; a reset then is fine.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    // A header sent more than once (Link) is one value, joined by ", " as HTTP allows.
    let mut headers: HashMap<String, String> = HashMap::new();
    for (name, value) in lines.filter_map(|l| l.split_once(':')) {
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        headers
            .entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    (status, headers, dechunk(body))
}

/// `POST /whip` with `offer` as `application/sdp`.
pub fn post_offer(server: &Server, offer: &str) -> (u16, HashMap<String, String>, String) {
    http(server, "POST", "/whip", "application/sdp", offer.as_bytes())
}

/// Undoes `Transfer-Encoding: chunked` if the body looks chunked (axum streams some bodies).
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_owned();
        };
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if size == 0 {
            return out;
        }
        let Some(chunk) = after.get(..size) else {
            return body.to_owned();
        };
        out.push_str(chunk);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

/// The interpreter with aiortc (`scripts/python-env.sh`, which `make test` runs).
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
        "the WebRTC client tests need aiortc: run scripts/python-env.sh (or set \
         REMOTEMEDIA_TEST_PYTHON)"
    );
    venv
}

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/whip_client.py")
}

/// A real offer (aiortc's, with its candidates), for requests that need one but no peer.
pub fn offer_from_aiortc() -> String {
    let out = Command::new(test_python())
        .arg(client_script())
        .args([
            "http://unused/whip",
            "--print-offer",
            "--host-candidate",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The aiortc client running against `server`.
pub struct Client(Child);

pub fn spawn_client(server: &Server, args: &[&str]) -> Client {
    let child = Command::new(test_python())
        .arg(client_script())
        .arg(server.url())
        // The server is on loopback (see whip_client.py's gather_only).
        .args(["--host-candidate", "127.0.0.1"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    Client(child)
}

impl Client {
    /// Waits for the client's summary line.
    pub fn finish(mut self) -> Value {
        let mut stdout = String::new();
        self.0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let status = self.0.wait().unwrap();
        let last = stdout.lines().last().unwrap_or_default();
        let summary: Value = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("client printed no summary ({e}, {status:?}): {stdout}"));
        summary
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run_client(server: &Server, args: &[&str]) -> Value {
    spawn_client(server, args).finish()
}
