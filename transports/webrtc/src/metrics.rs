//! Prometheus metrics of the WebRTC server (`/metrics`, beside the pipeline's own when it runs
//! in this process).

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The server's counters. One per process, shared by the HTTP handlers and the engine.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Sessions open now.
    pub open_sessions: IntGauge,
    /// WHIP offers, by outcome (`answered` or the refusal's label).
    pub offers: IntCounterVec,
    /// Sessions ended, by reason.
    pub sessions_ended: IntCounterVec,
    /// Time from receiving an offer to having the answer, seconds.
    pub answer_seconds: Histogram,
    /// Opus packets received from clients.
    pub packets_received: IntCounter,
    /// Opus packets sent to clients.
    pub packets_sent: IntCounter,
    /// Audio dropped: a session's task fell a second behind, or a packet could not be sent.
    pub packets_dropped: IntCounter,
    /// Events written to `events` data channels.
    pub events_sent: IntCounter,
    /// Events dropped: no channel opened in time, or a client not reading.
    pub events_dropped: IntCounter,
    /// Datagrams no peer accepted (late, stray or foreign traffic).
    pub datagrams_ignored: IntCounter,
    /// Datagrams from unknown sources dropped unread: more arrived than the engine looks at.
    pub datagrams_rate_limited: IntCounter,
    /// Datagrams the socket would not send.
    pub datagrams_send_failed: IntCounter,
    /// Requests on another replica's session forwarded to it, by outcome (`answered` or why
    /// not).
    pub forwarded: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh counters in their own registry.
    ///
    /// # Panics
    ///
    /// Never: the names are fixed and distinct.
    #[must_use]
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(format!("remotemedia_webrtc_{name}"), help).expect("valid");
            registry.register(Box::new(c.clone())).expect("unique");
            c
        };
        let counter_vec = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(
                Opts::new(format!("remotemedia_webrtc_{name}"), help),
                &[label],
            )
            .expect("valid");
            registry.register(Box::new(c.clone())).expect("unique");
            c
        };
        let open_sessions = IntGauge::new(
            "remotemedia_webrtc_open_sessions",
            "Sessions open on this WebRTC server.",
        )
        .expect("valid");
        registry
            .register(Box::new(open_sessions.clone()))
            .expect("unique");
        let answer_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "remotemedia_webrtc_answer_seconds",
                "Time from a WHIP offer to its answer.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
            ]),
        )
        .expect("valid");
        registry
            .register(Box::new(answer_seconds.clone()))
            .expect("unique");
        Self {
            open_sessions,
            offers: counter_vec("offers_total", "WHIP offers, by outcome.", "outcome"),
            sessions_ended: counter_vec(
                "sessions_ended_total",
                "Sessions ended, by reason.",
                "reason",
            ),
            answer_seconds,
            packets_received: counter("packets_received_total", "Opus packets received."),
            packets_sent: counter("packets_sent_total", "Opus packets sent."),
            packets_dropped: counter(
                "packets_dropped_total",
                "Audio packets dropped (a session fell behind, or a send failed).",
            ),
            events_sent: counter("events_sent_total", "Events written to data channels."),
            events_dropped: counter(
                "events_dropped_total",
                "Events dropped (no events channel, or a client not reading).",
            ),
            datagrams_ignored: counter(
                "datagrams_ignored_total",
                "UDP datagrams no peer accepted.",
            ),
            datagrams_rate_limited: counter(
                "datagrams_rate_limited_total",
                "UDP datagrams from unknown sources dropped unread (over the engine's budget).",
            ),
            datagrams_send_failed: counter(
                "datagrams_send_failed_total",
                "UDP datagrams the socket would not send.",
            ),
            forwarded: counter_vec(
                "forwarded_total",
                "WHIP requests on another replica's session forwarded to it, by outcome.",
                "outcome",
            ),
            registry,
        }
    }

    /// The Prometheus text format.
    ///
    /// # Panics
    ///
    /// Never: encoding into memory does not fail.
    #[must_use]
    pub fn render(&self) -> String {
        let mut buf = String::new();
        TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut buf)
            .expect("encoding into memory cannot fail");
        buf
    }
}
