//! Counters and latency histograms per pipeline, node and session, rendered in the Prometheus
//! text format by [`Metrics::render`] for whichever process serves HTTP.
//!
//! Per-session series are removed when the session ends, so a long-running worker does not
//! accumulate one series per session ever opened.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets (seconds): 10 µs to 2.5 s. Node calls are microseconds; end-to-end latency
/// through buffering nodes reaches tens of milliseconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The runtime's metric families, in their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    node_items: IntCounterVec,
    node_errors: IntCounterVec,
    node_outputs: IntCounterVec,
    node_seconds: HistogramVec,
    sessions_started: IntCounterVec,
    sessions_active: IntGaugeVec,
    session_inputs: IntCounterVec,
    session_outputs: IntCounterVec,
    session_errors: IntCounterVec,
    session_latency: HistogramVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    let h = HistogramVec::new(opts, labels).expect("valid metric definition");
    registry
        .register(Box::new(h.clone()))
        .expect("metric names are unique");
    h
}

impl Metrics {
    /// Fresh metric families in a new registry.
    #[must_use]
    pub fn new() -> Self {
        let r = Registry::new();
        let node = &["pipeline", "node", "node_type"];
        let session = &["pipeline", "session"];
        let sessions_active = IntGaugeVec::new(
            Opts::new("remotemedia_sessions_active", "Sessions currently open."),
            &["pipeline"],
        )
        .expect("valid metric definition");
        r.register(Box::new(sessions_active.clone()))
            .expect("metric names are unique");
        Self {
            node_items: counter(
                &r,
                "remotemedia_node_items_total",
                "Items a node processed.",
                node,
            ),
            node_errors: counter(
                &r,
                "remotemedia_node_errors_total",
                "Items a node failed on.",
                node,
            ),
            node_outputs: counter(
                &r,
                "remotemedia_node_outputs_total",
                "Items a node emitted.",
                node,
            ),
            node_seconds: histogram(
                &r,
                "remotemedia_node_process_seconds",
                "Time a node spent processing one item.",
                node,
            ),
            sessions_started: counter(
                &r,
                "remotemedia_sessions_total",
                "Sessions opened.",
                &["pipeline"],
            ),
            sessions_active,
            session_inputs: counter(
                &r,
                "remotemedia_session_inputs_total",
                "Items sent into a session.",
                session,
            ),
            session_outputs: counter(
                &r,
                "remotemedia_session_outputs_total",
                "Data items a session delivered to its client.",
                session,
            ),
            session_errors: counter(
                &r,
                "remotemedia_session_errors_total",
                "Error items a session delivered to its client.",
                session,
            ),
            session_latency: histogram(
                &r,
                "remotemedia_session_latency_seconds",
                "Time from an input entering a session to an output derived from it leaving.",
                session,
            ),
            registry: r,
        }
    }

    /// All families in the Prometheus text exposition format (version 0.0.4).
    #[must_use]
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding into memory cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }

    /// The content type to serve [`Metrics::render`] with.
    #[must_use]
    pub fn content_type() -> &'static str {
        "text/plain; version=0.0.4; charset=utf-8"
    }

    pub(crate) fn node(&self, pipeline: &str, node: &str, node_type: &str) -> NodeMetrics {
        let labels = &[pipeline, node, node_type];
        NodeMetrics {
            items: self.node_items.with_label_values(labels),
            errors: self.node_errors.with_label_values(labels),
            outputs: self.node_outputs.with_label_values(labels),
            seconds: self.node_seconds.with_label_values(labels),
        }
    }

    pub(crate) fn session(&self, pipeline: &str, session: &str) -> SessionMetrics {
        self.sessions_started.with_label_values(&[pipeline]).inc();
        self.sessions_active.with_label_values(&[pipeline]).inc();
        let labels = [pipeline, session];
        SessionMetrics {
            inputs: self.session_inputs.with_label_values(&labels),
            outputs: self.session_outputs.with_label_values(&labels),
            errors: self.session_errors.with_label_values(&labels),
            latency: self.session_latency.with_label_values(&labels),
            owner: self.clone(),
            pipeline: pipeline.to_owned(),
            session: session.to_owned(),
        }
    }
}

/// Handles to one node's series (cheap to update on the hot path).
#[derive(Clone)]
pub(crate) struct NodeMetrics {
    pub(crate) items: prometheus::IntCounter,
    pub(crate) errors: prometheus::IntCounter,
    pub(crate) outputs: prometheus::IntCounter,
    pub(crate) seconds: prometheus::Histogram,
}

/// Handles to one session's series; dropping it removes them and decrements the active gauge.
pub(crate) struct SessionMetrics {
    pub(crate) inputs: prometheus::IntCounter,
    pub(crate) outputs: prometheus::IntCounter,
    pub(crate) errors: prometheus::IntCounter,
    pub(crate) latency: prometheus::Histogram,
    owner: Metrics,
    pipeline: String,
    session: String,
}

impl SessionMetrics {
    pub(crate) fn observe_latency(&self, latency: Duration) {
        self.latency.observe(latency.as_secs_f64());
    }
}

impl Drop for SessionMetrics {
    fn drop(&mut self) {
        let m = &self.owner;
        m.sessions_active
            .with_label_values(&[self.pipeline.as_str()])
            .dec();
        let labels = [self.pipeline.as_str(), self.session.as_str()];
        // Removal fails only if the series is already gone; nothing to do then.
        let _ = m.session_inputs.remove_label_values(&labels);
        let _ = m.session_outputs.remove_label_values(&labels);
        let _ = m.session_errors.remove_label_values(&labels);
        let _ = m.session_latency.remove_label_values(&labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_format_and_forgets_closed_sessions() {
        let m = Metrics::new();
        let node = m.node("demo", "resample", "FastResampleNode");
        node.items.inc();
        node.seconds.observe(0.000_2);
        let session = m.session("demo", "s-1");
        session.inputs.inc();
        session.observe_latency(Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("# TYPE remotemedia_node_items_total counter"));
        assert!(text.contains(r#"remotemedia_node_items_total{node="resample",node_type="FastResampleNode",pipeline="demo"} 1"#));
        assert!(
            text.contains(r#"remotemedia_session_inputs_total{pipeline="demo",session="s-1"} 1"#)
        );
        assert!(text.contains(r#"remotemedia_sessions_active{pipeline="demo"} 1"#));
        assert!(text.contains("remotemedia_session_latency_seconds_bucket"));
        drop(session);
        let text = m.render();
        assert!(!text.contains(r#"session="s-1""#));
        assert!(text.contains(r#"remotemedia_sessions_active{pipeline="demo"} 0"#));
        assert!(text.contains(r#"remotemedia_sessions_total{pipeline="demo"} 1"#));
    }
}
