//! `/metrics`, `/livez` and `/readyz` for Prometheus and the kubelet, the same in every server
//! binary: an axum [`Router`] to serve on its own port or merge into a server's.
//!
//! * `/livez`: 200 while the process answers. Liveness probes use it: a server that is
//!   draining, or whose worker is away, is not helped by a restart.
//! * `/readyz` (and `/healthz`, its older name): 200 while sessions can be opened here; 503
//!   naming why not (draining, the worker unreachable).
//! * `/metrics`: the transport's pipeline metrics, then each server's own (see [`gauge`]).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use remotemedia_runtime_core::PipelineTransport;
use remotemedia_runtime_core::metrics::Metrics;
use remotemedia_runtime_core::serve::Admission;

type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// What a server's probes report: readiness from its transport and sessions, metrics from
/// its transport plus what the server adds.
#[derive(Clone)]
pub struct Probes {
    transport: Arc<dyn PipelineTransport>,
    sessions: Option<Admission>,
    /// Not ready while this many sessions are open: the Service then sends new sessions to
    /// other pods, and the open ones go on.
    full_at: Option<usize>,
    extra: Vec<Render>,
}

impl Probes {
    /// Probes of a server opening sessions on `transport`: ready while it is.
    #[must_use]
    pub fn new(transport: Arc<dyn PipelineTransport>) -> Self {
        Self {
            transport,
            sessions: None,
            full_at: None,
            extra: Vec::new(),
        }
    }

    /// Not ready once `sessions` is draining.
    #[must_use]
    pub fn draining_with(mut self, sessions: Admission) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Not ready while `max` sessions are open (of those given to
    /// [`Probes::draining_with`]): a full pod stops being a target for new sessions without
    /// failing its open ones.
    #[must_use]
    pub fn full_at(mut self, max: usize) -> Self {
        self.full_at = Some(max);
        self
    }

    /// Appends `render`'s Prometheus text to `/metrics`.
    #[must_use]
    pub fn metrics(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.extra.push(Arc::new(render));
        self
    }

    /// The routes, to serve or to merge into a server's own router.
    pub fn router<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/livez", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/healthz", get(readyz))
            .with_state(Arc::new(self))
    }

    /// Serves the routes on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        if let Err(e) = axum::serve(listener, self.router::<()>()).await {
            tracing::warn!(error = %e, "the metrics endpoint stopped");
        }
    }

    /// `Ok` while sessions can be opened here; why not otherwise.
    async fn ready(&self) -> Result<(), String> {
        if let Some(sessions) = &self.sessions {
            if sessions.is_draining() {
                return Err("draining".to_owned());
            }
            if let Some(max) = self.full_at.filter(|&max| sessions.open() >= max) {
                return Err(format!("full: {max} of {max} sessions open"));
            }
        }
        self.transport.ready().await.map_err(|e| e.to_string())
    }
}

async fn readyz(State(probes): State<Arc<Probes>>) -> Response {
    match probes.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn metrics(State(probes): State<Arc<Probes>>) -> Response {
    let mut text = probes.transport.metrics();
    for render in &probes.extra {
        text.push_str(&render());
    }
    ([(header::CONTENT_TYPE, Metrics::content_type())], text).into_response()
}

/// One gauge in Prometheus text format, e.g. a server's open sessions. `labels` are
/// `name="value"` pairs; values are escaped.
#[must_use]
pub fn gauge(name: &str, help: &str, labels: &[(&str, &str)], value: f64) -> String {
    let labels = if labels.is_empty() {
        String::new()
    } else {
        let pairs: Vec<String> = labels
            .iter()
            .map(|(k, v)| {
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{k}=\"{v}\"")
            })
            .collect();
        format!("{{{}}}", pairs.join(","))
    };
    format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name}{labels} {value}\n")
}

/// Binds `addr`, naming `flag` (e.g. `--metrics-listen`) when it fails.
///
/// # Errors
///
/// The address cannot be bound.
pub async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {flag} {addr}"))
}

#[cfg(test)]
mod tests {
    use remotemedia_runtime_core::PipelineRunner;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Status line and body of `GET path`, over a real connection.
    async fn get(addr: SocketAddr, path: &str) -> (String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response.lines().next().unwrap_or_default().to_owned();
        let body = response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        (status, body)
    }

    #[tokio::test]
    async fn readiness_follows_the_drain_and_liveness_does_not() {
        let sessions = Admission::default();
        let open = sessions.clone();
        let probes = Probes::new(Arc::new(PipelineRunner::new()))
            .draining_with(sessions.clone())
            .metrics(move || {
                gauge(
                    "t_open",
                    "Open sessions.",
                    &[("link", "a\"b")],
                    open.open() as f64,
                )
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(probes.serve(listener));

        let _slot = sessions.admit(5).unwrap();
        assert!(get(addr, "/readyz").await.0.contains(" 200 "));
        let (status, body) = get(addr, "/metrics").await;
        assert!(status.contains(" 200 "), "{status}");
        assert!(body.contains("t_open{link=\"a\\\"b\"} 1\n"), "{body}");

        sessions.refuse_new();
        let (status, body) = get(addr, "/readyz").await;
        assert!(status.contains(" 503 "), "{status}");
        assert_eq!(body, "draining\n");
        assert!(get(addr, "/healthz").await.0.contains(" 503 "));
        assert!(get(addr, "/livez").await.0.contains(" 200 "));
        assert!(get(addr, "/nope").await.0.contains(" 404 "));
        served.abort();
    }

    #[tokio::test]
    async fn a_full_server_is_not_ready_until_a_session_ends() {
        let sessions = Admission::default();
        let probes = Probes::new(Arc::new(PipelineRunner::new()))
            .draining_with(sessions.clone())
            .full_at(2);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(probes.serve(listener));
        let first = sessions.admit(2).unwrap();
        assert!(get(addr, "/readyz").await.0.contains(" 200 "));
        let _second = sessions.admit(2).unwrap();
        let (status, body) = get(addr, "/readyz").await;
        assert!(status.contains(" 503 "), "{status}");
        assert_eq!(body, "full: 2 of 2 sessions open\n");
        // Alive all along: the open sessions go on.
        assert!(get(addr, "/livez").await.0.contains(" 200 "));
        drop(first);
        assert!(get(addr, "/readyz").await.0.contains(" 200 "));
        served.abort();
    }

    #[test]
    fn a_gauge_without_labels_is_one_sample_line() {
        assert_eq!(
            gauge("x", "An x.", &[], 2.0),
            "# HELP x An x.\n# TYPE x gauge\nx 2\n"
        );
    }
}
