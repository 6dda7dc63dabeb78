//! [`PipelineSession`]: the in-process [`StreamSession`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::node_task::send_to_all;
use super::{NodeInbox, Origin};
use crate::data::TransportData;
use crate::metrics::SessionMetrics;
use crate::transport::{SessionError, SessionOutput, StreamSession};

/// A running session of an in-process pipeline. See [`crate::transport`] for the contract.
pub struct PipelineSession {
    id: String,
    /// Senders into the source nodes; `None` once input has ended or the session closed.
    ingress: Mutex<Option<Arc<[NodeInbox]>>>,
    outputs: tokio::sync::Mutex<mpsc::Receiver<SessionOutput>>,
    cancel: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Each node's id and whether it has finished.
    progress: Vec<(String, Arc<AtomicBool>)>,
    next_sequence: AtomicU64,
    closed: AtomicBool,
    drained: AtomicBool,
    metrics: Arc<SessionMetrics>,
    /// `Some(reason)` once a node was lost: the session has failed.
    aborted: watch::Receiver<Option<String>>,
}

impl std::fmt::Debug for PipelineSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineSession")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PipelineSession {
    pub(super) fn spawn(
        id: String,
        sources: Vec<NodeInbox>,
        outputs: mpsc::Receiver<SessionOutput>,
        node_futures: Vec<impl Future<Output = ()> + Send + 'static>,
        progress: Vec<(String, Arc<AtomicBool>)>,
        metrics: Arc<SessionMetrics>,
        abort: &watch::Sender<Option<String>>,
    ) -> Self {
        let (cancel, _) = watch::channel(false);
        let tasks = node_futures
            .into_iter()
            .map(|fut| {
                let mut cancelled = cancel.subscribe();
                // A lost node fails the session: every node stops (remote ones end their
                // processes) without waiting for the client to notice.
                let mut aborted = abort.subscribe();
                tokio::spawn(async move {
                    tokio::select! {
                        () = fut => {}
                        _ = cancelled.wait_for(|c| *c) => {}
                        Ok(_) = aborted.wait_for(Option::is_some) => {}
                    }
                })
            })
            .collect();
        Self {
            id,
            ingress: Mutex::new(Some(sources.into())),
            outputs: tokio::sync::Mutex::new(outputs),
            cancel,
            tasks: Mutex::new(tasks),
            progress,
            next_sequence: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            drained: AtomicBool::new(false),
            metrics,
            aborted: abort.subscribe(),
        }
    }

    /// The error for calls on a session a lost node failed.
    fn abort_error(&self) -> Option<SessionError> {
        self.aborted
            .borrow()
            .as_ref()
            .map(|reason| SessionError::Aborted {
                session_id: self.id.clone(),
                reason: reason.clone(),
            })
    }

    fn take_ingress(&self) -> Option<Arc<[NodeInbox]>> {
        self.ingress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn stop(&self) -> Vec<JoinHandle<()>> {
        self.closed.store(true, Ordering::Release);
        self.take_ingress();
        self.cancel.send_replace(true);
        std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

#[async_trait]
impl StreamSession for PipelineSession {
    fn session_id(&self) -> &str {
        &self.id
    }

    fn unfinished_nodes(&self) -> Vec<String> {
        self.progress
            .iter()
            .filter(|(_, done)| !done.load(Ordering::Acquire))
            .map(|(id, _)| id.clone())
            .collect()
    }

    async fn send_input(&self, input: TransportData) -> Result<(), SessionError> {
        input
            .data
            .check_format()
            .map_err(SessionError::InvalidInput)?;
        if let Some(e) = self.abort_error() {
            return Err(e);
        }
        let sources = self
            .ingress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| SessionError::InputEnded {
                session_id: self.id.clone(),
            })?;
        let sequence = input
            .sequence
            .unwrap_or_else(|| self.next_sequence.fetch_add(1, Ordering::Relaxed));
        let origin = Arc::new(Origin {
            sequence: Some(sequence),
            metadata: input.metadata,
            entered: tokio::time::Instant::now(),
        });
        self.metrics.inputs.inc();
        send_to_all(&sources, input.data, &origin).await;
        if let Some(e) = self.abort_error() {
            return Err(e);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(SessionError::Closed {
                session_id: self.id.clone(),
            });
        }
        Ok(())
    }

    async fn end_input(&self) {
        self.take_ingress();
    }

    async fn recv_output(&self) -> Result<Option<SessionOutput>, SessionError> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(None);
        }
        let mut aborted = self.aborted.clone();
        let mut outputs = self.outputs.lock().await;
        let item = tokio::select! {
            biased;
            // `Ok` only: the sender goes away when every node is done, which is no failure.
            Ok(_) = aborted.wait_for(Option::is_some) => None,
            item = outputs.recv() => item,
        };
        if let Some(e) = self.abort_error() {
            return Err(e);
        }
        if item.is_none() {
            self.drained.store(true, Ordering::Release);
        }
        Ok(item)
    }

    async fn close(&self) {
        for task in self.stop() {
            // A node task only ends by finishing or by cancellation; a panic inside a node is
            // caught in the task, so a join error here carries nothing to report.
            let _ = task.await;
        }
    }

    fn is_active(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && !self.drained.load(Ordering::Acquire)
    }
}

impl Drop for PipelineSession {
    fn drop(&mut self) {
        // Cancel without waiting: the tasks end at their next await.
        self.stop();
    }
}
