//! [`PipelineRunner`]: runs pipelines in this process.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::data::TransportData;
use crate::executor::{PipelineSession, QueueSizes, start_session};
use crate::manifest::{Manifest, ValidationReport, validate};
use crate::metrics::Metrics;
use crate::nodes::{CreateError, NodeRegistry};
use crate::plan::PipelinePlan;
use crate::transport::{OpenedSession, PipelineTransport, RunError, SessionOutput, StreamSession};

/// Tunables of a [`PipelineRunner`].
#[derive(Clone, Copy, Debug)]
pub struct RunnerConfig {
    /// Items each node's input queue holds before senders wait.
    pub node_queue_capacity: usize,
    /// Bytes of items waiting for one node before senders wait (an item larger than this
    /// passes alone): with [`node_queue_capacity`](Self::node_queue_capacity), what bounds a
    /// session's memory.
    pub node_queue_bytes: usize,
    /// Outputs the client queue holds before nodes wait.
    pub output_queue_capacity: usize,
    /// How long [`PipelineRunner::execute_unary`] waits for the graph to drain.
    pub unary_deadline: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            node_queue_capacity: 16,
            node_queue_bytes: 16 << 20,
            output_queue_capacity: 64,
            unary_deadline: Duration::from_secs(30),
        }
    }
}

impl RunnerConfig {
    /// Sets the node queue capacity (at least 1).
    #[must_use]
    pub fn node_queue_capacity(mut self, n: usize) -> Self {
        self.node_queue_capacity = n.max(1);
        self
    }

    /// Sets the byte budget of each node's input queue (at least 1).
    #[must_use]
    pub fn node_queue_bytes(mut self, n: usize) -> Self {
        self.node_queue_bytes = n.max(1);
        self
    }

    /// Sets the client queue capacity (at least 1).
    #[must_use]
    pub fn output_queue_capacity(mut self, n: usize) -> Self {
        self.output_queue_capacity = n.max(1);
        self
    }

    /// Sets the unary deadline.
    #[must_use]
    pub fn unary_deadline(mut self, d: Duration) -> Self {
        self.unary_deadline = d;
        self
    }
}

/// Runs pipelines in-process, validating each manifest against its node registry.
///
/// ```
/// # tokio_test();
/// # fn tokio_test() { tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use remotemedia_runtime_core::{PipelineRunner, RuntimeData, TransportData, manifest::{Format, Manifest}};
///
/// let runner = PipelineRunner::new();
/// let manifest = Manifest::from_text(
///     r#"{"version": "v1", "nodes": [{"id": "calc", "node_type": "CalculatorNode"}]}"#,
///     Format::Json,
///     runner.registry(),
/// ).unwrap();
/// let request = RuntimeData::Json(serde_json::json!({"operation": "add", "operands": [2, 3]}));
/// let outputs = runner.execute_unary(manifest, TransportData::new(request)).await.unwrap();
/// assert_eq!(outputs[0].node_id(), "calc");
/// # }) }
/// ```
#[derive(Clone, Debug)]
pub struct PipelineRunner {
    registry: Arc<NodeRegistry>,
    metrics: Metrics,
    config: RunnerConfig,
    /// The pipeline of sessions that name none ([`PipelineTransport::open`] with `None`).
    served: Option<Arc<PipelinePlan>>,
}

impl Default for PipelineRunner {
    fn default() -> Self {
        Self::new()
    }
}

impl PipelineRunner {
    /// A runner with every built-in node type and default settings.
    #[must_use]
    pub fn new() -> Self {
        Self::with_registry(NodeRegistry::with_builtins())
    }

    /// A runner with the given node types.
    #[must_use]
    pub fn with_registry(registry: NodeRegistry) -> Self {
        Self {
            registry: Arc::new(registry),
            metrics: Metrics::new(),
            config: RunnerConfig::default(),
            served: None,
        }
    }

    /// Serves `manifest`: sessions opened without a manifest of their own run it. Planned
    /// here, once.
    ///
    /// # Errors
    /// [`RunError::InvalidManifest`] when `manifest` does not validate against this runner's
    /// node types.
    pub fn serving(mut self, manifest: Arc<Manifest>) -> Result<Self, RunError> {
        self.served = Some(self.plan(manifest)?);
        Ok(self)
    }

    /// The pipeline this runner serves, if any.
    #[must_use]
    pub fn served(&self) -> Option<&Arc<PipelinePlan>> {
        self.served.as_ref()
    }

    /// Replaces the settings.
    #[must_use]
    pub fn with_config(mut self, config: RunnerConfig) -> Self {
        self.config = config;
        self
    }

    /// The node types this runner knows.
    #[must_use]
    pub fn registry(&self) -> &NodeRegistry {
        &self.registry
    }

    /// The node types this runner knows, shared.
    #[must_use]
    pub fn shared_registry(&self) -> Arc<NodeRegistry> {
        self.registry.clone()
    }

    /// Metrics of every session this runner started.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Validates `manifest` against this runner's registry.
    ///
    /// # Errors
    /// Returns every problem when there is at least one error (warnings alone pass).
    pub fn validate(&self, manifest: &Manifest) -> Result<(), ValidationReport> {
        let report = ValidationReport {
            problems: validate(manifest, &self.registry),
        };
        if report.has_errors() {
            Err(report)
        } else {
            Ok(())
        }
    }

    /// Validates `manifest` against this runner's node types and plans it: what sessions
    /// start from, validated once however many sessions start.
    ///
    /// # Errors
    /// [`RunError::InvalidManifest`] with every problem.
    pub fn plan(&self, manifest: Arc<Manifest>) -> Result<Arc<PipelinePlan>, RunError> {
        PipelinePlan::new(manifest, &self.registry).map(Arc::new)
    }

    /// Starts a session of `plan`, which must come from a runner with the same node types.
    /// Must be called inside a tokio runtime (it spawns one task per node).
    ///
    /// # Errors
    /// [`RunError::NodeCreation`] for a node that cannot be built, and
    /// [`RunError::NodeStart`] for a node whose process could not be started.
    pub fn start(&self, plan: &PipelinePlan) -> Result<PipelineSession, RunError> {
        let mut nodes = Vec::with_capacity(plan.manifest().nodes.len());
        for (spec, factory) in plan.nodes() {
            let node = factory.create(&spec.params).map_err(|e| match e {
                CreateError::InvalidParams(issues) => RunError::NodeCreation {
                    node_id: spec.id.clone(),
                    issues,
                },
                CreateError::Start(reason) => RunError::NodeStart {
                    node_id: spec.id.clone(),
                    reason,
                },
            })?;
            nodes.push(node);
        }
        let sizes = QueueSizes {
            node_input: self.config.node_queue_capacity,
            node_input_bytes: self.config.node_queue_bytes,
            client_output: self.config.output_queue_capacity,
        };
        Ok(start_session(
            plan.manifest(),
            plan.graph(),
            nodes,
            &self.metrics,
            sizes,
        ))
    }

    /// Validates, plans and starts a session in one call (servers that start many sessions
    /// of one pipeline plan once and [`start`](Self::start) each).
    ///
    /// # Errors
    /// As [`PipelineRunner::plan`] and [`PipelineRunner::start`].
    pub fn create_stream_session(&self, manifest: &Manifest) -> Result<PipelineSession, RunError> {
        let plan = self.plan(Arc::new(manifest.clone()))?;
        self.start(&plan)
    }

    /// Runs one input through a fresh session and returns all outputs once the graph has
    /// drained (buffering nodes flush at the end of input).
    ///
    /// # Errors
    /// As [`PipelineRunner::create_stream_session`], and [`RunError::DeadlineExceeded`] when the
    /// graph has not drained within [`RunnerConfig::unary_deadline`].
    pub async fn execute_unary(
        &self,
        manifest: Arc<Manifest>,
        input: TransportData,
    ) -> Result<Vec<SessionOutput>, RunError> {
        self.execute(manifest, input).await
    }
}

/// A unary call on any session: sends one input, ends input, and collects every output
/// within `deadline`; on timeout the session is closed and [`RunError::DeadlineExceeded`]
/// (naming `pipeline` and the session's [unfinished nodes](StreamSession::unfinished_nodes))
/// returned. Every transport's unary call goes through here, so there is one deadline
/// implementation.
///
/// # Errors
/// [`RunError::Session`] when the session fails, [`RunError::DeadlineExceeded`].
pub async fn execute_session(
    session: &dyn StreamSession,
    pipeline: &str,
    input: TransportData,
    deadline: Duration,
) -> Result<Vec<SessionOutput>, RunError> {
    let received = std::sync::atomic::AtomicUsize::new(0);
    let feed = async {
        session.send_input(input).await?;
        session.end_input().await;
        Ok::<_, RunError>(())
    };
    let collect = async {
        let mut outputs = Vec::new();
        while let Some(item) = session.recv_output().await? {
            outputs.push(item);
            received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok::<_, RunError>(outputs)
    };
    match tokio::time::timeout(deadline, async { tokio::try_join!(feed, collect) }).await {
        Ok(result) => result.map(|((), outputs)| outputs),
        Err(_elapsed) => {
            let unfinished_nodes = session.unfinished_nodes();
            session.close().await;
            Err(RunError::DeadlineExceeded {
                pipeline: pipeline.to_owned(),
                deadline,
                unfinished_nodes,
                outputs_received: received.into_inner(),
            })
        }
    }
}

#[async_trait]
impl PipelineTransport for PipelineRunner {
    async fn open(&self, manifest: Option<Arc<Manifest>>) -> Result<OpenedSession, RunError> {
        let plan = match manifest {
            Some(manifest) => self.plan(manifest)?,
            None => self.served.clone().ok_or(RunError::NothingServed)?,
        };
        let session = self.start(&plan)?;
        Ok(OpenedSession {
            session: Box::new(session),
            manifest: plan.manifest().clone(),
        })
    }

    async fn node_types(&self) -> Result<Arc<NodeRegistry>, RunError> {
        Ok(self.registry.clone())
    }

    fn metrics(&self) -> String {
        self.metrics.render()
    }

    fn unary_deadline(&self) -> Duration {
        self.config.unary_deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Format;

    const PASS: &str =
        r#"{"version": "v1", "nodes": [{"id": "pass", "node_type": "PassThrough"}]}"#;

    #[tokio::test]
    async fn sessions_without_a_manifest_run_the_served_pipeline_or_are_refused() {
        let runner = PipelineRunner::new();
        assert!(
            matches!(runner.open(None).await, Err(RunError::NothingServed)),
            "a runner serving nothing must say so"
        );
        let served = Manifest::from_text(PASS, Format::Json, runner.registry()).unwrap();
        let runner = runner.serving(served.clone()).unwrap();
        let opened = runner.open(None).await.unwrap();
        assert_eq!(opened.manifest, served);
        let input = TransportData::new(crate::RuntimeData::Text("hi".to_owned()));
        opened.session.send_input(input).await.unwrap();
        opened.session.end_input().await;
        let output = opened.session.recv_output().await.unwrap().unwrap();
        assert_eq!(output.node_id(), "pass");
    }

    #[test]
    fn a_served_manifest_is_validated_once_when_served() {
        let other = NodeRegistry::with_builtins();
        let text = r#"{"version": "v1", "nodes": [{"id": "x", "node_type": "Nope"}]}"#;
        let checked = crate::manifest::check_document(text, Format::Json, &other);
        let manifest = Arc::new(checked.manifest.unwrap());
        match PipelineRunner::new().serving(manifest) {
            Err(RunError::InvalidManifest(report)) => {
                assert!(report.to_string().contains("Nope"), "{report}");
            }
            other => panic!("expected InvalidManifest, got {:?}", other.map(|_| ())),
        }
    }
}
