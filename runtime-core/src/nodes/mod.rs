//! Processing nodes: the [`Node`] trait, the [`NodeRegistry`], and the built-in node types.
//!
//! A node type is a typed params struct (serde + schemars, unknown fields rejected) plus a
//! small synchronous processor. The executor owns tasks and queues; a node only turns one input
//! into zero or more outputs, and flushes what it buffered when its input ends.
//!
//! A node whose work happens in another process (a Python node) is a [`RemoteNode`] instead:
//! its calls await, and it can be lost altogether, which fails its session.

/// Prefix of node types written in Python (`python:Gain`), run in processes of their own.
pub const PYTHON_NODE_TYPE_PREFIX: &str = "python:";

mod audio;
mod audio_chunker;
mod audio_level;
mod calculator;
mod catalog;
mod channel_balance;
mod channel_mixer;
mod clipping_detector;
mod fast_resample;
mod params;
mod passthrough;
mod registry;
mod silence_detector;
mod text_collector;

use std::fmt;

use async_trait::async_trait;
use tokio::sync::watch;

pub use audio_chunker::AudioChunkerNode;
pub use audio_level::AudioLevelNode;
pub use calculator::CalculatorNode;
pub use catalog::{CATALOG_VERSION, CatalogError, NodeCatalog, NodeTypeInfo};
pub use channel_balance::ChannelBalanceNode;
pub use channel_mixer::ChannelMixerNode;
pub use clipping_detector::ClippingDetectorNode;
pub use fast_resample::{FastResampleNode, ResampleQuality};
pub use params::SchemaError;
#[cfg(feature = "ipc")]
pub(crate) use params::{ParamsSchema, object_or_empty};
pub use passthrough::PassThrough;
pub use registry::{NodeFactory, NodeKind, NodeRegistry, ParamInfo, ParamIssue};
pub use silence_detector::SilenceDetectorNode;
pub use text_collector::TextCollectorNode;

use crate::data::{DataKind, RuntimeData};

/// A processing step. One instance serves one session, so it may keep per-stream state.
pub trait Node: Send {
    /// Handles one input item, pushing any results to `out`.
    ///
    /// # Errors
    /// A [`NodeError`] fails this item only: it reaches the client as an error item naming the
    /// node, and the node keeps receiving the items that follow.
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError>;

    /// Called once when the node's input has ended: emit anything still buffered.
    ///
    /// # Errors
    /// As for [`Node::process`].
    fn finish(&mut self, _out: &mut Outputs) -> Result<(), NodeError> {
        Ok(())
    }
}

/// A node working outside this process. Like [`Node`], but each call awaits the other side,
/// and the other side may die: then [`RemoteNode::lost`] turns `Some(reason)` and the session
/// fails, even while the node is idle.
#[async_trait]
pub trait RemoteNode: Send {
    /// As [`Node::process`]; [`NodeError::Lost`] when the other side is gone.
    ///
    /// # Errors
    /// As [`Node::process`].
    async fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError>;

    /// As [`Node::finish`].
    ///
    /// # Errors
    /// As [`RemoteNode::process`].
    async fn finish(&mut self, out: &mut Outputs) -> Result<(), NodeError>;

    /// Becomes `Some(reason)` when the node can no longer work at all.
    fn lost(&self) -> watch::Receiver<Option<String>>;
}

/// A node built for one session: in-process or remote.
pub enum NodeInstance {
    /// Runs in this process; each call returns when the item is done.
    Local(Box<dyn Node>),
    /// Runs in another process.
    Remote(Box<dyn RemoteNode>),
}

impl NodeInstance {
    /// The in-process node, if this is one.
    #[must_use]
    pub fn into_local(self) -> Option<Box<dyn Node>> {
        match self {
            Self::Local(node) => Some(node),
            Self::Remote(_) => None,
        }
    }
}

impl fmt::Debug for NodeInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local(_) => "NodeInstance::Local",
            Self::Remote(_) => "NodeInstance::Remote",
        })
    }
}

/// Why a node could not be built for a session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// Its params are invalid (normally caught when the manifest is validated).
    #[error("{}", .0.iter().map(|i| i.message.as_str()).collect::<Vec<_>>().join("; "))]
    InvalidParams(Vec<ParamIssue>),
    /// Its params are fine but it could not start (a Python node's process did not spawn).
    #[error("{0}")]
    Start(String),
}

/// Where a node puts its results. Reused across calls to avoid allocating per item.
#[derive(Debug, Default)]
pub struct Outputs {
    items: Vec<RuntimeData>,
}

impl Outputs {
    /// Emits one item.
    pub fn push(&mut self, item: RuntimeData) {
        self.items.push(item);
    }

    /// Number of items emitted since the last drain.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing was emitted since the last drain.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Takes the emitted items, leaving the buffer empty (and its capacity in place).
    pub fn drain(&mut self) -> std::vec::Drain<'_, RuntimeData> {
        self.items.drain(..)
    }
}

/// Why a node could not process one item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node does not handle this kind of data.
    #[error("expected {expected} input, got {found}")]
    UnsupportedInput {
        /// What the node accepts, e.g. "audio".
        expected: &'static str,
        /// What arrived.
        found: DataKind,
    },
    /// The data has the right kind but unusable content (bad JSON request, bad audio format).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The node failed for a reason of its own.
    #[error("{0}")]
    Failed(String),
    /// The node can no longer work at all (its process died): the session fails.
    #[error("{0}")]
    Lost(String),
}

impl NodeError {
    /// The error for a node that only takes `expected` data.
    #[must_use]
    pub fn unsupported(expected: &'static str, found: &RuntimeData) -> Self {
        Self::UnsupportedInput {
            expected,
            found: found.kind(),
        }
    }
}

/// Data kinds a node consumes and produces, as shown by `remotemedia-runtime nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Io {
    /// Kinds of input it processes.
    pub accepts: &'static [DataKind],
    /// Kinds of output it produces.
    pub produces: &'static [DataKind],
}

impl fmt::Display for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |kinds: &[DataKind]| {
            kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join("|")
        };
        write!(f, "{} -> {}", join(self.accepts), join(self.produces))
    }
}

/// `kinds` (sorted, without repeats) as a `'static` slice, as [`Io`] wants. There are at most
/// 2^5 such sets, so each is leaked once per process however often node types are described.
pub(crate) fn interned(mut kinds: Vec<DataKind>) -> &'static [DataKind] {
    kinds.sort_by_key(|k| *k as u8);
    kinds.dedup();
    static SETS: std::sync::Mutex<Vec<&'static [DataKind]>> = std::sync::Mutex::new(Vec::new());
    let mut sets = SETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(set) = sets.iter().find(|s| **s == kinds.as_slice()) {
        return set;
    }
    let set: &'static [DataKind] = Vec::leak(kinds);
    sets.push(set);
    set
}
