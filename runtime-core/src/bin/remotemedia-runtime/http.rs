//! `--metrics-listen`: `/metrics`, `/healthz` and `/readyz` for Prometheus and the kubelet.
//!
//! A minimal HTTP/1.0 responder on a tokio listener, because runtime-core must not depend on
//! an HTTP stack (hyper is a transport crate's business). Three fixed GET paths, one request
//! per connection, requests capped in size and time: nothing here needs more.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head read; probes and scrapers send a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;
/// A client that has not sent its request head by then is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the endpoints report.
pub(crate) trait Probe: Send + Sync + 'static {
    /// Prometheus text exposition.
    fn metrics(&self) -> String;
    /// Whether the process serves (readiness); `Err` says why not.
    fn ready(&self) -> Result<(), String>;
}

/// Serves until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, probe: Arc<dyn Probe>) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let probe = probe.clone();
        tokio::spawn(async move {
            if let Err(e) = respond(stream, probe.as_ref()).await {
                tracing::debug!(error = %e, "metrics connection failed");
            }
        });
    }
}

async fn respond(mut stream: TcpStream, probe: &dyn Probe) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let (status, content_type, body) = route(&head, probe);
    let response = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads until the blank line that ends the request head.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Status line, content type and body for a request head.
fn route(head: &str, probe: &dyn Probe) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (words.next(), words.next());
    let path = target.map(|t| t.split('?').next().unwrap_or(t));
    match (method, path) {
        (Some("GET"), Some("/metrics")) => (
            "200 OK",
            remotemedia_runtime_core::metrics::Metrics::content_type(),
            probe.metrics(),
        ),
        (Some("GET"), Some("/healthz")) => ("200 OK", TEXT, "ok\n".to_owned()),
        (Some("GET"), Some("/readyz")) => match probe.ready() {
            Ok(()) => ("200 OK", TEXT, "ready\n".to_owned()),
            Err(why) => ("503 Service Unavailable", TEXT, format!("{why}\n")),
        },
        (Some("GET"), _) => (
            "404 Not Found",
            TEXT,
            "not found; try /metrics, /healthz or /readyz\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            TEXT,
            "only GET is served\n".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(bool);

    impl Probe for Fixed {
        fn metrics(&self) -> String {
            "remotemedia_sessions_active 3\n".to_owned()
        }
        fn ready(&self) -> Result<(), String> {
            if self.0 {
                Ok(())
            } else {
                Err("not bound yet".to_owned())
            }
        }
    }

    #[test]
    fn routes_by_method_and_path() {
        let ready = Fixed(true);
        let get = |path: &str| route(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"), &ready);
        assert_eq!(get("/metrics").2, "remotemedia_sessions_active 3\n");
        assert_eq!(get("/healthz").0, "200 OK");
        assert_eq!(get("/readyz?verbose").0, "200 OK");
        assert_eq!(get("/nope").0, "404 Not Found");
        assert_eq!(
            route("POST /metrics HTTP/1.1\r\n\r\n", &ready).0,
            "405 Method Not Allowed"
        );
        assert_eq!(route("", &ready).0, "405 Method Not Allowed");
        let (status, _, body) = route("GET /readyz HTTP/1.1\r\n\r\n", &Fixed(false));
        assert_eq!(
            (status, body.as_str()),
            ("503 Service Unavailable", "not bound yet\n")
        );
    }
}
