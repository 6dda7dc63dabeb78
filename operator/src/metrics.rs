//! The operator's Prometheus metrics, served at `/metrics`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::runtime::reflector::Store;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::crd::Pipeline;
use crate::status::types;

/// Counters and gauges of one operator process.
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    reconcile_duration: HistogramVec,
    reconcile_errors: IntCounterVec,
    admissions: IntCounterVec,
    pipelines: IntGaugeVec,
    leader: IntGauge,
    autoscaler_writes: IntCounterVec,
    stores: Mutex<Vec<Store<Pipeline>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every series.
    ///
    /// # Panics
    /// Never in practice: the names are static and distinct.
    #[must_use]
    pub fn new() -> Arc<Self> {
        let registry = Registry::new_custom(Some("remotemedia_operator".to_owned()), None)
            .unwrap_or_else(|_| unreachable!("valid prefix"));
        let reconciles = IntCounterVec::new(
            Opts::new("reconciles_total", "Reconciles by result (ok, error)."),
            &["result"],
        )
        .unwrap_or_else(|_| unreachable!("valid metric"));
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new("reconcile_duration_seconds", "Time one reconcile took.").buckets(
                vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
            ),
            &[],
        )
        .unwrap_or_else(|_| unreachable!("valid metric"));
        let reconcile_errors = IntCounterVec::new(
            Opts::new("reconcile_errors_total", "Failed reconciles by error kind."),
            &["error"],
        )
        .unwrap_or_else(|_| unreachable!("valid metric"));
        let admissions = IntCounterVec::new(
            Opts::new("admission_reviews_total", "Admission reviews by outcome."),
            &["allowed"],
        )
        .unwrap_or_else(|_| unreachable!("valid metric"));
        let pipelines = IntGaugeVec::new(
            Opts::new("pipelines", "Pipelines by condition type and status."),
            &["condition", "status"],
        )
        .unwrap_or_else(|_| unreachable!("valid metric"));
        let leader = IntGauge::new("leader", "1 while this replica holds the leader lease.")
            .unwrap_or_else(|_| unreachable!("valid metric"));
        let autoscaler_writes = IntCounterVec::new(
            Opts::new(
                "autoscaler_writes_total",
                "API writes of the autoscaler by what (status, pod, scale); it reads from watches.",
            ),
            &["write"],
        )
        .unwrap_or_else(|_| unreachable!("valid metric"));
        // The process's CPU and memory (process_cpu_seconds_total, ...), for the autoscaler's
        // cost per Pipeline (docs/benchmarks.md).
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .unwrap_or_else(|_| unreachable!("distinct names"));
        for c in [
            &reconciles,
            &reconcile_errors,
            &admissions,
            &autoscaler_writes,
        ] {
            registry
                .register(Box::new(c.clone()))
                .unwrap_or_else(|_| unreachable!("distinct names"));
        }
        registry
            .register(Box::new(reconcile_duration.clone()))
            .unwrap_or_else(|_| unreachable!("distinct names"));
        registry
            .register(Box::new(pipelines.clone()))
            .unwrap_or_else(|_| unreachable!("distinct names"));
        registry
            .register(Box::new(leader.clone()))
            .unwrap_or_else(|_| unreachable!("distinct names"));
        Arc::new(Self {
            registry,
            reconciles,
            reconcile_duration,
            reconcile_errors,
            admissions,
            pipelines,
            leader,
            autoscaler_writes,
            stores: Mutex::new(Vec::new()),
        })
    }

    /// Records one reconcile.
    pub fn reconciled(&self, took: Duration, error: Option<&str>) {
        self.reconcile_duration
            .with_label_values::<&str>(&[])
            .observe(took.as_secs_f64());
        match error {
            None => self.reconciles.with_label_values(&["ok"]).inc(),
            Some(kind) => {
                self.reconciles.with_label_values(&["error"]).inc();
                self.reconcile_errors.with_label_values(&[kind]).inc();
            }
        }
    }

    /// Records one admission review.
    pub fn admission(&self, allowed: bool) {
        self.admissions
            .with_label_values(&[if allowed { "true" } else { "false" }])
            .inc();
    }

    /// Counts one API write of the autoscaler (`status`, `pod` or `scale`).
    pub fn autoscaler_wrote(&self, what: &str) {
        self.autoscaler_writes.with_label_values(&[what]).inc();
    }

    /// Sets the leader gauge.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Adds a controller's cache; `pipelines` is counted from the caches at scrape time, so
    /// deleted Pipelines disappear from it without bookkeeping.
    pub fn watch_store(&self, store: Store<Pipeline>) {
        self.stores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(store);
    }

    /// The text exposition format.
    #[must_use]
    pub fn render(&self) -> String {
        self.pipelines.reset();
        let stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        for pipeline in stores.iter().flat_map(Store::state) {
            let conditions = pipeline.status.as_ref().map(|s| s.conditions.as_slice());
            for type_ in [types::MANIFEST_VALID, types::READY, types::DEGRADED] {
                let status = conditions
                    .unwrap_or_default()
                    .iter()
                    .find(|c| c.type_ == type_)
                    .map_or("Unknown", |c| c.status.as_str());
                self.pipelines.with_label_values(&[type_, status]).inc();
            }
        }
        drop(stores);
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_cpu_and_the_autoscalers_writes_are_exported() {
        let metrics = Metrics::new();
        metrics.autoscaler_wrote("scale");
        let page = metrics.render();
        assert!(
            page.contains("remotemedia_operator_autoscaler_writes_total{write=\"scale\"} 1"),
            "{page}"
        );
        assert!(
            page.lines()
                .any(|l| l.starts_with("remotemedia_operator_process_cpu_seconds_total ")),
            "{page}"
        );
    }
}
