//! [`IpcSession`]: one session running in the worker, over the connection its client shares
//! with every other session of this process (see the parent module).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Connection, wait_lost};
use crate::data::TransportData;
use crate::ipc::codec::{Ending, Message};
use crate::ipc::link::SessionId;
use crate::ipc::mux::{Inbound, OutboxError, RouteEnded, SendCredits, encode};
use crate::ipc::refusal;
use crate::manifest::Manifest;
use crate::transport::{NodeFailure, SessionError, SessionOutput, StreamSession};

/// A session running in a worker. Implements [`StreamSession`] with the same contract as the
/// in-process session; in addition, calls fail with [`SessionError::Aborted`] when the worker
/// dies or aborts the session.
pub struct IpcSession {
    id: SessionId,
    id_text: String,
    manifest: Option<Manifest>,
    /// What the worker sent this session; also counts outputs taken, for credits.
    inbound: tokio::sync::Mutex<Inbound>,
    /// Inputs this session may still send before the worker takes some.
    credits: SendCredits,
    lost: watch::Receiver<Option<String>>,
    input_ended: AtomicBool,
    /// Set by `close`; a receive waiting on the worker watches it to end at once.
    closed: watch::Sender<bool>,
    finished: AtomicBool,
    connection: Arc<Connection>,
}

impl IpcSession {
    /// A session the worker opened under `id`.
    pub(super) fn new(
        id: SessionId,
        manifest: Option<Manifest>,
        inbound: Inbound,
        credits: SendCredits,
        lost: watch::Receiver<Option<String>>,
        connection: Arc<Connection>,
    ) -> Self {
        Self {
            id,
            id_text: id.to_string(),
            manifest,
            inbound: tokio::sync::Mutex::new(inbound),
            credits,
            lost,
            input_ended: AtomicBool::new(false),
            closed: watch::Sender::new(false),
            finished: AtomicBool::new(false),
            connection,
        }
    }

    /// The manifest the worker runs for this session.
    #[must_use]
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    fn aborted(&self, reason: String) -> SessionError {
        self.finish();
        SessionError::Aborted {
            session_id: self.id_text.clone(),
            reason,
        }
    }

    /// The session is over on this end: stop routing it (which also fails a send waiting
    /// for credits).
    fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        self.connection.routes.remove(self.id);
    }

    fn closed_error(&self) -> SessionError {
        SessionError::Closed {
            session_id: self.id_text.clone(),
        }
    }

    /// Queues a message for the worker.
    pub(super) fn send(&self, message: Message) -> Result<(), SessionError> {
        self.connection
            .up
            .send(self.id, message)
            .map_err(|e| match e {
                OutboxError::Encode(e) => SessionError::InvalidInput(e.to_string()),
                OutboxError::Stopped => self.aborted(OutboxError::Stopped.to_string()),
            })
    }

    /// Waits for a credit to send one input, failing as soon as the worker is lost.
    async fn spend_credit(&self) -> Result<(), SessionError> {
        let mut lost = self.lost.clone();
        if let Some(reason) = lost.borrow().clone() {
            return Err(self.aborted(reason));
        }
        tokio::select! {
            spent = self.credits.spend() => spent.map_err(|_| {
                if *self.closed.borrow() {
                    self.closed_error()
                } else {
                    self.aborted("the worker ended the session".to_owned())
                }
            }),
            reason = wait_lost(&mut lost) => Err(self.aborted(reason)),
        }
    }
}

#[async_trait]
impl StreamSession for IpcSession {
    fn session_id(&self) -> &str {
        &self.id_text
    }

    async fn send_input(&self, input: TransportData) -> Result<(), SessionError> {
        if *self.closed.borrow() {
            return Err(self.closed_error());
        }
        if self.input_ended.load(Ordering::Acquire) {
            return Err(SessionError::InputEnded {
                session_id: self.id_text.clone(),
            });
        }
        // Checked here as the in-process session does, so a bad item fails this call rather
        // than arriving later as an error item.
        input
            .data
            .check_format()
            .map_err(SessionError::InvalidInput)?;
        // Encoded first: an item that cannot be encoded must not cost the session a credit.
        let bytes = encode(self.id, Message::Input(input))
            .map_err(|e| SessionError::InvalidInput(e.to_string()))?;
        self.spend_credit().await?;
        self.connection
            .up
            .send_encoded(bytes)
            .map_err(|e| self.aborted(e.to_string()))
    }

    async fn end_input(&self) {
        if !self.input_ended.swap(true, Ordering::AcqRel) && !*self.closed.borrow() {
            // A lost worker shows up in recv_output; nothing to report here.
            let _ = self.send(Message::EndInput);
        }
    }

    async fn recv_output(&self) -> Result<Option<SessionOutput>, SessionError> {
        if self.finished.load(Ordering::Acquire) {
            return Ok(None);
        }
        let mut lost = self.lost.clone();
        let mut closed = self.closed.subscribe();
        let mut inbound = self.inbound.lock().await;
        let delivery = tokio::select! {
            delivery = inbound.recv() => delivery,
            reason = wait_lost(&mut lost) => return Err(self.aborted(reason)),
            _ = closed.wait_for(|closed| *closed) => return Ok(None),
        };
        let delivery = delivery.map_err(|ended| {
            if ended == RouteEnded::Overrun {
                // Tell the worker, which still sends: its outputs now go nowhere.
                let _ = self.send(Message::Close);
            }
            self.aborted(ended.to_string())
        })?;
        let message = delivery
            .map_err(|e| self.aborted(format!("undecodable message from the worker: {e}")))?;
        let output = match message {
            Message::Output { node, item } => SessionOutput::Data {
                node_id: node,
                data: item,
            },
            Message::Error {
                node,
                sequence,
                message,
            } => SessionOutput::Error(NodeFailure {
                // A failure of the session itself on one item (an input the worker could not
                // take) has no node; the session API reports it with an empty node id.
                node_id: node.unwrap_or_default(),
                sequence,
                message,
            }),
            Message::Closed(Ending::Completed) => {
                self.finish();
                return Ok(None);
            }
            Message::Closed(Ending::Aborted { reason }) => return Err(self.aborted(reason)),
            Message::Closed(refused @ Ending::Refused(_)) => {
                let reason = refusal::open_error(refused).to_string();
                return Err(self.aborted(reason));
            }
            other => {
                return Err(self.aborted(format!("unexpected message from the worker: {other:?}")));
            }
        };
        if let Some(credit) = inbound.took_item() {
            // A failure here shows up on the next call.
            let _ = self.send(credit);
        }
        Ok(Some(output))
    }

    async fn close(&self) {
        if self.closed.send_replace(true) {
            return;
        }
        let _ = self.send(Message::Close);
        self.finish();
    }

    fn is_active(&self) -> bool {
        !self.finished.load(Ordering::Acquire) && !*self.closed.borrow()
    }
}

impl Drop for IpcSession {
    fn drop(&mut self) {
        if !*self.closed.borrow() && !self.finished.load(Ordering::Acquire) {
            let _ = self.send(Message::Close);
        }
        self.connection.routes.remove(self.id);
    }
}
