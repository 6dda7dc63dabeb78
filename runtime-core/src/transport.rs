//! The transport abstraction: what a transport (gRPC, WebRTC, Python, a pod-local IPC link)
//! needs from something that runs pipelines, and what a streaming session looks like.
//!
//! The in-process [`PipelineRunner`](crate::PipelineRunner) implements [`PipelineTransport`];
//! so will the IPC runner that reaches a worker in another process. A transport written
//! against these traits runs in-process or as a sidecar by configuration only.
//!
//! # Session contract
//!
//! * Inputs go to every source node (a node without incoming connections). Outputs come from
//!   every sink node and from nodes marked `is_output_node`, each tagged with its node id.
//! * Every queue is bounded: when the client stops reading outputs, the pipeline fills up and
//!   `send_input` waits. Nothing is dropped. Send and receive from different tasks.
//! * A node error on one item arrives as [`SessionOutput::Error`] naming the node; the session
//!   continues with the next item.
//! * After [`StreamSession::end_input`], nodes flush what they buffered, and `recv_output`
//!   returns `Ok(None)` once every output has been delivered.
//! * [`StreamSession::close`] stops the session at once, discarding queued items. It is
//!   idempotent, and dropping a session closes it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::data::TransportData;
use crate::manifest::{Manifest, ValidationReport};
use crate::nodes::{NodeRegistry, ParamIssue};

/// One item a session delivers to its client.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SessionOutput {
    /// Data produced by a node.
    Data {
        /// Id of the node that produced it.
        node_id: String,
        /// The data, with the sequence and metadata of the input it derives from.
        #[serde(flatten)]
        data: TransportData,
    },
    /// A node failed on one item; the session goes on.
    Error(NodeFailure),
}

impl SessionOutput {
    /// Id of the node that produced this item or failed.
    #[must_use]
    pub fn node_id(&self) -> &str {
        match self {
            Self::Data { node_id, .. } => node_id,
            Self::Error(f) => &f.node_id,
        }
    }

    /// Sequence number of the input this item derives from.
    #[must_use]
    pub fn sequence(&self) -> Option<u64> {
        match self {
            Self::Data { data, .. } => data.sequence,
            Self::Error(f) => f.sequence,
        }
    }
}

/// A node's failure on one item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("node '{node_id}' failed: {message}")]
pub struct NodeFailure {
    /// The failing node.
    pub node_id: String,
    /// Sequence number of the input being processed.
    pub sequence: Option<u64>,
    /// What went wrong.
    pub message: String,
}

/// Why an operation on an open session failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Input was sent after `end_input` or `close`.
    #[error("session {session_id} no longer accepts input (input ended or session closed)")]
    InputEnded {
        /// The session.
        session_id: String,
    },
    /// The input item itself is malformed (audio with zero channels, a tensor whose bytes do not
    /// match its shape). The session is unaffected.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The session is gone (closed by this side).
    #[error("session {session_id} is closed")]
    Closed {
        /// The session.
        session_id: String,
    },
    /// The session ended abnormally: its worker died or shut down, or it reclaimed the
    /// session, or a node process crashed.
    #[error("session {session_id} was aborted: {reason}")]
    Aborted {
        /// The session.
        session_id: String,
        /// What happened.
        reason: String,
    },
}

/// Why running a pipeline failed as a whole.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The manifest does not validate.
    #[error("{0}")]
    InvalidManifest(ValidationReport),
    /// A node could not be created from its params.
    #[error("node '{node_id}' could not be created: {}", .issues.iter().map(|i| i.message.as_str()).collect::<Vec<_>>().join("; "))]
    NodeCreation {
        /// The node.
        node_id: String,
        /// What was wrong with its params.
        issues: Vec<ParamIssue>,
    },
    /// A node's params are fine but it could not start (its process could not be spawned).
    #[error("node '{node_id}' could not start: {reason}")]
    NodeStart {
        /// The node.
        node_id: String,
        /// Why.
        reason: String,
    },
    /// A unary call did not drain before its deadline.
    #[error(
        "pipeline '{pipeline}' did not finish within {deadline:?}; still running: {}; {outputs_received} outputs had arrived",
        .unfinished_nodes.join(", ")
    )]
    DeadlineExceeded {
        /// Pipeline name.
        pipeline: String,
        /// The deadline that passed.
        deadline: Duration,
        /// Nodes that had not finished.
        unfinished_nodes: Vec<String>,
        /// Outputs received before the deadline.
        outputs_received: usize,
    },
    /// The session failed while running.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The runner is out of reach: no worker serves the link, or the worker died.
    #[error("{reason}")]
    Unavailable {
        /// What is missing, naming the link.
        reason: String,
    },
    /// A session on the served pipeline was asked of a transport that serves none.
    #[error("no pipeline is served here; the session must name its manifest")]
    NothingServed,
    /// The worker refused to open the session for a reason other than the manifest.
    #[error("the worker refused the session: {reason}")]
    Refused {
        /// The worker's reason.
        reason: String,
    },
}

/// How long a unary call waits for the graph to drain, unless the transport says otherwise.
pub const DEFAULT_UNARY_DEADLINE: Duration = Duration::from_secs(30);

/// A session just opened, with the manifest it runs.
pub struct OpenedSession {
    /// The session.
    pub session: Box<dyn StreamSession>,
    /// What it runs: the manifest asked for, or the served pipeline.
    pub manifest: Arc<Manifest>,
}

impl std::fmt::Debug for OpenedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSession")
            .field("session", &self.session.session_id())
            .field("pipeline", &self.manifest.name())
            .finish()
    }
}

/// Something that opens sessions: the in-process runner, a worker reached over the pod link, a
/// remote server. Servers (gRPC, WebRTC, a custom transport) take one and do not know which.
#[async_trait]
pub trait PipelineTransport: Send + Sync {
    /// Opens a streaming session on `manifest`, or on the pipeline this transport serves when
    /// `None` ([`RunError::NothingServed`] when it serves none).
    async fn open(&self, manifest: Option<Arc<Manifest>>) -> Result<OpenedSession, RunError>;

    /// The node types sessions can use: listed to clients, and used to check client manifests
    /// before they are sent on. For a worker over the pod link, what the worker says it runs.
    async fn node_types(&self) -> Result<Arc<NodeRegistry>, RunError>;

    /// `Ok` while sessions can be opened (what a server's readiness reports);
    /// [`RunError::Unavailable`] naming what is missing otherwise.
    async fn ready(&self) -> Result<(), RunError> {
        Ok(())
    }

    /// Prometheus text of the pipelines run here; empty when they run elsewhere (a worker
    /// serves its own).
    fn metrics(&self) -> String {
        String::new()
    }

    /// How long [`execute`](Self::execute) waits for the graph to drain.
    fn unary_deadline(&self) -> Duration {
        DEFAULT_UNARY_DEADLINE
    }

    /// Opens a streaming session on `manifest`.
    async fn stream(&self, manifest: Arc<Manifest>) -> Result<Box<dyn StreamSession>, RunError> {
        Ok(self.open(Some(manifest)).await?.session)
    }

    /// Runs one input through a fresh session and returns every output once the graph has
    /// drained, or a [`RunError::DeadlineExceeded`]; never hangs. Through
    /// [`execute_session`](crate::execute_session), the one unary path.
    async fn execute(
        &self,
        manifest: Arc<Manifest>,
        input: TransportData,
    ) -> Result<Vec<SessionOutput>, RunError> {
        let opened = self.open(Some(manifest)).await?;
        crate::runner::execute_session(
            opened.session.as_ref(),
            opened.manifest.name(),
            input,
            self.unary_deadline(),
        )
        .await
    }
}

/// An open streaming session. Methods take `&self` so one task can send while another
/// receives (see the module docs for the full contract).
#[async_trait]
pub trait StreamSession: Send + Sync {
    /// Unique id of this session.
    fn session_id(&self) -> &str;

    /// Sends one item to the pipeline's sources, waiting while the pipeline is full. An item
    /// without a sequence number gets the next one of the session's own counter.
    async fn send_input(&self, input: TransportData) -> Result<(), SessionError>;

    /// Declares that no more input follows: nodes flush, then outputs end.
    async fn end_input(&self);

    /// The next output, or `Ok(None)` when the session has ended (drained or closed).
    async fn recv_output(&self) -> Result<Option<SessionOutput>, SessionError>;

    /// Stops the session now, discarding queued items. Idempotent.
    async fn close(&self);

    /// False once the session is closed or all its outputs were delivered.
    fn is_active(&self) -> bool;

    /// Nodes that have not finished their work, named when a unary call runs out of time.
    /// Empty where the session cannot see its nodes (across a link or the network).
    fn unfinished_nodes(&self) -> Vec<String> {
        Vec::new()
    }
}
