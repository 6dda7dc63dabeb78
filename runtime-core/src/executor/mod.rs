//! The session router: one task per node, bounded queues between them.
//!
//! ```text
//! send_input --> [queue] source --> [queue] node --> ... --> sink --> [client queue] --> recv_output
//! ```
//!
//! Each node task awaits its sends, so a slow consumer slows everything upstream of it down to
//! `send_input` (backpressure) and nothing is dropped. When input ends, each node flushes and
//! exits once all its predecessors have, so the end of input cascades down the graph and the
//! client queue closes after the last output.

mod inbox;
mod node_task;
mod session;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::{mpsc, watch};

pub use session::PipelineSession;

use crate::data::RuntimeData;
use crate::graph::Graph;
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::nodes::NodeInstance;
use inbox::{Held, NodeInbox};
use node_task::{NodeLinks, run_node};

/// Queue sizes of a session.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueSizes {
    pub(crate) node_input: usize,
    pub(crate) node_input_bytes: usize,
    pub(crate) client_output: usize,
}

/// Where an item came from: the input it derives from, echoed on every output.
#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) sequence: Option<u64>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) entered: tokio::time::Instant,
}

impl Origin {
    /// For output not caused by any input (a node flushing with no input ever received).
    fn internal() -> Self {
        Self {
            sequence: None,
            metadata: BTreeMap::new(),
            entered: tokio::time::Instant::now(),
        }
    }
}

/// An item in flight between nodes.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) data: RuntimeData,
    pub(crate) origin: Arc<Origin>,
    /// Its share of the receiving node's byte budget, released when it is taken.
    pub(crate) held: Held,
}

/// Spawns the node tasks of a session on the current tokio runtime. `nodes[i]` is node `i` of
/// `graph` (built from `manifest`).
pub(crate) fn start_session(
    manifest: &Manifest,
    graph: &Graph,
    nodes: Vec<NodeInstance>,
    metrics: &Metrics,
    sizes: QueueSizes,
) -> PipelineSession {
    let session_id = uuid::Uuid::new_v4().to_string();
    let session_metrics = Arc::new(metrics.session(manifest.name(), &session_id));
    let (client_tx, client_rx) = mpsc::channel(sizes.client_output);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..graph.len())
        .map(|_| NodeInbox::new(sizes.node_input, sizes.node_input_bytes))
        .unzip();
    let sources: Vec<_> = graph.sources().map(|i| senders[i].clone()).collect();
    let finished: Vec<Arc<AtomicBool>> = (0..graph.len())
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();

    let abort = Arc::new(watch::Sender::new(None));
    let mut tasks = Vec::with_capacity(graph.len());
    for (i, (node, input)) in nodes.into_iter().zip(receivers).enumerate() {
        let spec = &manifest.nodes[i];
        let links = NodeLinks {
            node_id: spec.id.clone(),
            successors: graph
                .successors(i)
                .iter()
                .map(|&j| senders[j].clone())
                .collect(),
            client: graph.emits_to_client(i).then(|| client_tx.clone()),
            errors: client_tx.clone(),
            metrics: metrics.node(manifest.name(), &spec.id, &spec.node_type),
            session_metrics: Arc::clone(&session_metrics),
            finished: Arc::clone(&finished[i]),
            abort: Arc::clone(&abort),
        };
        tasks.push(run_node(node, input, links));
    }
    // Only the ingress and predecessor tasks may hold senders now, so each queue closes
    // exactly when everything feeding it is done.
    drop(senders);
    drop(client_tx);

    let progress = manifest
        .nodes
        .iter()
        .map(|n| n.id.clone())
        .zip(finished)
        .collect();
    PipelineSession::spawn(
        session_id,
        sources,
        client_rx,
        tasks,
        progress,
        session_metrics,
        &abort,
    )
}
