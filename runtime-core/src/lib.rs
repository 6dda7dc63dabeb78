//! # remotemedia-runtime-core
//!
//! The transport-agnostic pipeline engine of RemoteMedia: it reads and validates pipeline
//! manifests, runs them as DAGs of processing nodes with bounded queues, and defines the
//! traits every transport (gRPC, WebRTC, Python, pod-local IPC) is built on. It depends on no
//! transport crate.
//!
//! # Layout
//!
//! * [`data`]: [`RuntimeData`] (audio, text, JSON, binary, tensor) and [`TransportData`].
//! * [`manifest`]: the v1 manifest format (JSON/YAML, or a `Pipeline` resource), validated all
//!   at once with field paths, node ids and lines.
//! * [`graph`]: the pure DAG built from a valid manifest.
//! * [`nodes`]: the [`Node`](nodes::Node) trait, the [`NodeRegistry`](nodes::NodeRegistry) and
//!   the built-in nodes.
//! * [`transport`]: [`PipelineTransport`], [`StreamSession`] and the session contract.
//! * [`PipelineRunner`]: the in-process runner (`execute_unary`, `create_stream_session`).
//! * [`python`]: node types written in Python, each instance in a process of its own.
//! * [`metrics`]: Prometheus counters and histograms per pipeline, node and session.
//! * [`serve`]: what servers run sessions on, session admission and draining.
//! * [`report`]: an error and its causes as one line, where a message must be text.
//! * [`shutdown`]: the SIGTERM/SIGINT stop request the servers' binaries wait for.
//!
//! See the [`PipelineRunner`] docs for a runnable example.

pub mod data;
mod executor;
pub mod graph;
#[cfg(feature = "ipc")]
pub mod ipc;
pub mod manifest;
pub mod metrics;
pub mod nodes;
mod plan;
pub mod pod;
#[cfg(feature = "ipc")]
pub mod python;
pub mod report;
mod runner;
#[cfg(feature = "ipc")]
pub mod serve;
pub mod shutdown;
pub mod transport;

pub use data::{AudioBuffer, RuntimeData, TransportData};
pub use executor::PipelineSession;
pub use plan::PipelinePlan;
pub use runner::{PipelineRunner, RunnerConfig, execute_session};
pub use transport::{
    DEFAULT_UNARY_DEADLINE, NodeFailure, OpenedSession, PipelineTransport, RunError, SessionError,
    SessionOutput, StreamSession,
};
