//! A worker pod's open sessions, read from its runtime container's `/metrics`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use remotemedia_runtime_core::pod::{RUNTIME_METRICS_PORT, SESSIONS_GAUGE};
/// A pod that takes longer counts as not answering this time.
const TIMEOUT: Duration = Duration::from_secs(1);
/// More than a runtime's metrics page ever is.
const MAX_PAGE_BYTES: usize = 256 * 1024;

/// The open sessions of the worker pod at `ip`; `None` when it does not answer in time or its
/// page has no such gauge.
pub(super) async fn open_sessions(ip: IpAddr) -> Option<u32> {
    open_sessions_at(SocketAddr::new(ip, RUNTIME_METRICS_PORT)).await
}

async fn open_sessions_at(address: SocketAddr) -> Option<u32> {
    let page = tokio::time::timeout(TIMEOUT, metrics_page(address))
        .await
        .ok()??;
    parse_sessions(&page)
}

async fn metrics_page(address: SocketAddr) -> Option<String> {
    let tcp = tokio::net::TcpStream::connect(address).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .ok()?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/metrics")
        .header(hyper::header::HOST, address.to_string())
        .body(Empty::<Bytes>::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = Limited::new(response.into_body(), MAX_PAGE_BYTES)
        .collect()
        .await
        .ok()?
        .to_bytes();
    String::from_utf8(body.to_vec()).ok()
}

/// The gauge's value in a Prometheus text page. Read by hand: the runtime prints this one
/// gauge itself, one sample on one line (`name{link="..."} value`); a parser of the whole
/// exposition format would add a dependency for that line.
#[must_use]
pub(super) fn parse_sessions(page: &str) -> Option<u32> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let rest = line.strip_prefix(SESSIONS_GAUGE)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            let value: f64 = rest.rsplit(' ').next()?.parse().ok()?;
            (value.is_finite() && value >= 0.0 && value <= f64::from(u32::MAX))
                .then_some(value as u32)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauge_is_read_from_its_line_and_nothing_else() {
        let page = "# HELP remotemedia_ipc_sessions_open Sessions open on the pod link.\n\
                    # TYPE remotemedia_ipc_sessions_open gauge\n\
                    remotemedia_ipc_sessions_open_total 9\n\
                    remotemedia_ipc_sessions_open{link=\"voice\"} 3\n";
        assert_eq!(parse_sessions(page), Some(3));
        assert_eq!(parse_sessions("remotemedia_ipc_sessions_open 0\n"), Some(0));
        for page in [
            "",
            "remotemedia_ipc_sessions_open{link=\"v\"} NaN",
            "remotemedia_ipc_sessions_open{link=\"v\"} -1",
            "remotemedia_ipc_sessions_opened 4",
        ] {
            assert_eq!(parse_sessions(page), None, "{page:?}");
        }
    }

    /// A server on loopback that answers every connection with `reply` (or, with `None`,
    /// accepts and says nothing).
    async fn server(reply: Option<&'static str>) -> SocketAddr {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut tcp, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = tcp.read(&mut buf).await;
                    match reply {
                        Some(body) => {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
                                body.len()
                            );
                            let _ = tcp.write_all(head.as_bytes()).await;
                            let _ = tcp.write_all(body.as_bytes()).await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        address
    }

    #[tokio::test]
    async fn a_pod_is_asked_over_http() {
        let address = server(Some("remotemedia_ipc_sessions_open{link=\"v\"} 4\n")).await;
        assert_eq!(open_sessions_at(address).await, Some(4));
    }

    #[tokio::test]
    async fn a_pod_that_does_not_answer_in_time_is_silent() {
        let address = server(None).await;
        let started = std::time::Instant::now();
        assert_eq!(open_sessions_at(address).await, None);
        assert!(started.elapsed() >= TIMEOUT, "gave up before the timeout");
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = unused.local_addr().unwrap();
        drop(unused);
        assert_eq!(open_sessions_at(closed).await, None);
    }
}
