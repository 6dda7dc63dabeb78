//! The task that drives one node: receive, process, forward, report.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use super::{Envelope, NodeInbox, Origin};
use crate::data::{RuntimeData, TransportData};
use crate::metrics::{NodeMetrics, SessionMetrics};
use crate::nodes::{Node, NodeError, NodeInstance, Outputs, RemoteNode};
use crate::transport::{NodeFailure, SessionOutput};

/// Everything a node task sends to: successors, the client, metrics.
pub(super) struct NodeLinks {
    pub(super) node_id: String,
    pub(super) successors: Vec<NodeInbox>,
    /// Set when this node's outputs go to the client (a sink, or `is_output_node`).
    pub(super) client: Option<mpsc::Sender<SessionOutput>>,
    /// Error items always reach the client, whatever the node's position.
    pub(super) errors: mpsc::Sender<SessionOutput>,
    pub(super) metrics: NodeMetrics,
    pub(super) session_metrics: Arc<SessionMetrics>,
    pub(super) finished: Arc<AtomicBool>,
    /// Set (once) when a node is lost: the session fails with this reason.
    pub(super) abort: Arc<watch::Sender<Option<String>>>,
}

/// Runs `node` until its input closes (all predecessors finished, or the session's input
/// ended), then flushes it. Dropping the future (on close) stops it at its next await.
pub(super) async fn run_node(
    node: NodeInstance,
    input: mpsc::Receiver<Envelope>,
    links: NodeLinks,
) {
    match node {
        NodeInstance::Local(node) => run_local(node, input, links).await,
        NodeInstance::Remote(node) => run_remote(node, input, links).await,
    }
}

async fn run_local(node: Box<dyn Node>, mut input: mpsc::Receiver<Envelope>, links: NodeLinks) {
    // `None` after a panic: the node's state can no longer be trusted.
    let mut node = Some(node);
    let mut outputs = Outputs::default();
    let mut last_origin: Option<Arc<Origin>> = None;

    while let Some(Envelope { data, origin, held }) = input.recv().await {
        // Taken: its bytes no longer wait here.
        drop(held);
        links.metrics.items.inc();
        let result = call(&mut node, &links, |n| n.process(data, &mut outputs));
        links.forward(&mut outputs, &origin).await;
        if let Err(message) = result {
            links.fail(message, &origin).await;
        }
        last_origin = Some(origin);
    }

    // Input ended: flush buffered state. Tail output belongs to the last input seen.
    let origin = last_origin.unwrap_or_else(|| Arc::new(Origin::internal()));
    if node.is_some() {
        let result = call(&mut node, &links, |n| n.finish(&mut outputs));
        links.forward(&mut outputs, &origin).await;
        if let Err(message) = result {
            links.fail(message, &origin).await;
        }
    }
    links.finished.store(true, Ordering::Release);
}

/// As [`run_local`] for a node in another process, which may also be lost: then the session
/// fails, whether the node was busy or idle.
async fn run_remote(
    mut node: Box<dyn RemoteNode>,
    mut input: mpsc::Receiver<Envelope>,
    links: NodeLinks,
) {
    let mut lost = node.lost();
    let mut outputs = Outputs::default();
    let mut last_origin: Option<Arc<Origin>> = None;
    loop {
        let envelope = tokio::select! {
            biased;
            // `Ok` only: a node that can no longer report losses is not lost.
            Ok(reason) = lost.wait_for(Option::is_some) => {
                let reason = reason.clone().unwrap_or_default();
                return links.abort(&reason);
            }
            envelope = input.recv() => envelope,
        };
        let Some(Envelope { data, origin, held }) = envelope else {
            break;
        };
        drop(held);
        links.metrics.items.inc();
        let started = Instant::now();
        let result = node.process(data, &mut outputs).await;
        links
            .metrics
            .seconds
            .observe(started.elapsed().as_secs_f64());
        links.forward(&mut outputs, &origin).await;
        match result {
            Ok(()) => {}
            Err(NodeError::Lost(reason)) => return links.abort(&reason),
            Err(e) => links.fail(e.to_string(), &origin).await,
        }
        last_origin = Some(origin);
    }
    let origin = last_origin.unwrap_or_else(|| Arc::new(Origin::internal()));
    let result = node.finish(&mut outputs).await;
    links.forward(&mut outputs, &origin).await;
    match result {
        Ok(()) => {}
        Err(NodeError::Lost(reason)) => return links.abort(&reason),
        Err(e) => links.fail(e.to_string(), &origin).await,
    }
    links.finished.store(true, Ordering::Release);
}

/// Calls into the node, timing it and turning errors and panics into messages.
fn call(
    node: &mut Option<Box<dyn Node>>,
    links: &NodeLinks,
    f: impl FnOnce(&mut dyn Node) -> Result<(), NodeError>,
) -> Result<(), String> {
    let Some(n) = node.as_deref_mut() else {
        return Err("node is out of service after an earlier panic".into());
    };
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| f(n)));
    links
        .metrics
        .seconds
        .observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => {
            *node = None;
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(node = %links.node_id, panic = %what, "Node panicked; it will fail every further item.");
            Err(format!("node panicked: {what}"))
        }
    }
}

impl NodeLinks {
    /// Sends each output to every successor and, for client-facing nodes, to the client.
    /// Sends are awaited: a full queue downstream holds this node back (backpressure).
    async fn forward(&self, outputs: &mut Outputs, origin: &Arc<Origin>) {
        for item in outputs.drain() {
            self.metrics.outputs.inc();
            let Some(client) = &self.client else {
                send_to_all(&self.successors, item, origin).await;
                continue;
            };
            // A sink (no successors) hands its item to the client by move; only a node that
            // also feeds successors needs a copy.
            let for_client = if self.successors.is_empty() {
                item
            } else {
                let copy = item.clone();
                send_to_all(&self.successors, item, origin).await;
                copy
            };
            let data = TransportData {
                data: for_client,
                sequence: origin.sequence,
                metadata: origin.metadata.clone(),
            };
            self.session_metrics.outputs.inc();
            self.session_metrics
                .observe_latency(origin.entered.elapsed());
            // A dropped receiver means the session is going away; nothing to deliver to.
            let _ = client
                .send(SessionOutput::Data {
                    node_id: self.node_id.clone(),
                    data,
                })
                .await;
        }
    }

    /// Fails the whole session; the first reason given wins.
    fn abort(&self, reason: &str) {
        let reason = format!("node '{}' was lost: {reason}", self.node_id);
        tracing::warn!(node = %self.node_id, %reason, "Failing the session.");
        self.abort.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        });
    }

    async fn fail(&self, message: String, origin: &Origin) {
        self.metrics.errors.inc();
        self.session_metrics.errors.inc();
        tracing::debug!(node = %self.node_id, sequence = ?origin.sequence, %message, "Node failed on an item.");
        let failure = NodeFailure {
            node_id: self.node_id.clone(),
            sequence: origin.sequence,
            message,
        };
        let _ = self.errors.send(SessionOutput::Error(failure)).await;
    }
}

/// Clones `item` to every successor but the last, which gets it by move.
pub(super) async fn send_to_all(targets: &[NodeInbox], item: RuntimeData, origin: &Arc<Origin>) {
    let Some((last, rest)) = targets.split_last() else {
        return;
    };
    // A node that is gone takes nothing more; the session is ending.
    for inbox in rest {
        let _ = inbox.send(item.clone(), origin).await;
    }
    let _ = last.send(item, origin).await;
}
