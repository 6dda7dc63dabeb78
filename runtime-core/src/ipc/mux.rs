//! Many sessions over one pipe pair: what both ends of a link share.
//!
//! * [`Outbox`]: sessions queue messages; one task writes them to the pipe and rings the
//!   reader once per batch, so under load a wake-up carries many messages rather than one.
//! * [`Routes`] and [`spawn_demux`]: one task reads a pipe and hands each message to its session's
//!   queue, or takes a [`Credit`](Message::Credit) straight to the session's send credits.
//! * [`Inbound`] and [`SendCredits`]: per-session flow control (see [`super::link`]). Queues
//!   are unbounded because credits bound them: a session never has more than
//!   [`SESSION_WINDOW`] items in flight each way, plus a few control messages.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{AcquireError, Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::codec::{self, DecodeError, EncodeError, Envelope, Message};
use super::link::{CREDIT_BATCH, SESSION_WINDOW, SessionId};
use super::pipe::{IpcError, PipeReader, PipeWriter};

/// Most messages written per batch: bounds how long the first of them waits for its ring.
const MAX_BATCH: usize = 64;

/// Why a message could not be queued.
#[derive(Debug, thiserror::Error)]
pub(super) enum OutboxError {
    /// A field exceeds its length prefix.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The task writing the pipe stopped: the pipe failed or the link is being torn down.
    #[error("the link's pipe writer stopped")]
    Stopped,
}

/// The sending side of one pipe, shared by every session on it. Cheap to clone.
#[derive(Clone)]
pub(super) struct Outbox {
    queue: mpsc::UnboundedSender<Vec<u8>>,
}

impl Outbox {
    /// Starts the task that writes what is queued to `pipe`, in order. It ends once every
    /// clone of the outbox is dropped and the queue is written, or when the pipe fails.
    pub(super) fn spawn(pipe: Arc<PipeWriter>, name: String) -> (Self, OwnedTask) {
        let (queue, mut queued) = mpsc::unbounded_channel::<Vec<u8>>();
        let task = OwnedTask::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
                if let Err(e) = pipe.send_batch(&batch).await {
                    tracing::warn!(pipe = %name, error = %e, "link pipe failed; writer stops");
                    return;
                }
                batch.clear();
            }
        });
        (Self { queue }, task)
    }

    /// Queues `message` of `session`.
    ///
    /// # Errors
    /// [`OutboxError`].
    pub(super) fn send(&self, session: SessionId, message: Message) -> Result<(), OutboxError> {
        self.send_encoded(encode(session, message)?)
    }

    /// Queues a message encoded by the caller (who may want to know it encodes before
    /// spending a credit on it).
    ///
    /// # Errors
    /// [`OutboxError::Stopped`].
    pub(super) fn send_encoded(&self, bytes: Vec<u8>) -> Result<(), OutboxError> {
        self.queue.send(bytes).map_err(|_| OutboxError::Stopped)
    }
}

/// `message` of `session` as bytes for a pipe.
///
/// # Errors
/// A field exceeds its length prefix.
pub(super) fn encode(session: SessionId, message: Message) -> Result<Vec<u8>, EncodeError> {
    codec::encode(&Envelope {
        session: session.0,
        message,
    })
}

/// A task of the link, aborted when its handle is dropped (its pipes go with it).
pub(super) struct OwnedTask(JoinHandle<()>);

impl OwnedTask {
    pub(super) fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(task))
    }

    /// Gives the task up to `limit` to end by itself, then aborts it.
    pub(super) async fn finish_within(mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, &mut self.0).await;
    }
}

impl Drop for OwnedTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a pipe's reader hands a session: a message, or why one addressed to it did not decode.
pub(super) type Delivery = Result<Message, DecodeError>;

/// Where the messages of each session on a pipe go.
#[derive(Default)]
pub(super) struct Routes(Mutex<HashMap<u64, Route>>);

struct Route {
    inbound: mpsc::UnboundedSender<Delivery>,
    credits: Arc<Semaphore>,
}

impl Routes {
    /// Routes `session`'s messages to the returned ends; `None` if it is routed already.
    pub(super) fn add(&self, session: SessionId) -> Option<(Inbound, SendCredits)> {
        let mut routes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if routes.contains_key(&session.0) {
            return None;
        }
        let (inbound, queue) = mpsc::unbounded_channel();
        let credits = Arc::new(Semaphore::new(SESSION_WINDOW as usize));
        routes.insert(
            session.0,
            Route {
                inbound,
                credits: credits.clone(),
            },
        );
        Some((Inbound { queue, taken: 0 }, SendCredits(credits)))
    }

    /// Stops routing `session`: later messages for it are unrouted.
    pub(super) fn remove(&self, session: SessionId) {
        let route = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&session.0);
        if let Some(route) = route {
            // A send waiting for credits the peer will no longer return fails now.
            route.credits.close();
        }
    }

    /// Hands `delivery` to `session`; gives it back if the session is not routed.
    fn deliver(&self, session: u64, delivery: Delivery) -> Option<Delivery> {
        let routes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(route) = routes.get(&session) else {
            return Some(delivery);
        };
        if let Ok(Message::Credit { count }) = delivery {
            // More than a window would let the peer's bug overflow our queues: clamp.
            let room = (SESSION_WINDOW as usize).saturating_sub(route.credits.available_permits());
            route.credits.add_permits((count as usize).min(room));
            return None;
        }
        route.inbound.send(delivery).err().map(|e| e.0)
    }
}

/// Starts the task that reads `pipe` (from `peer`, for the log) until it fails, handing each
/// message to its session. Messages for sessions not (or no longer) routed go to `unrouted`,
/// which answers or drops them.
pub(super) fn spawn_demux(
    pipe: PipeReader,
    routes: Arc<Routes>,
    unrouted: impl FnMut(SessionId, Delivery) + Send + 'static,
    peer: String,
) -> OwnedTask {
    OwnedTask::spawn(async move {
        let e = demux(pipe, routes, unrouted).await;
        tracing::warn!(%peer, error = %e, "link pipe from the peer failed");
    })
}

async fn demux(
    pipe: PipeReader,
    routes: Arc<Routes>,
    mut unrouted: impl FnMut(SessionId, Delivery),
) -> IpcError {
    loop {
        // Decoded while still in shared memory: the samples are copied once, here.
        let received = pipe
            .recv_with(|bytes| match codec::decode(bytes) {
                Ok(envelope) => Ok((envelope.session, Ok(envelope.message))),
                Err(e) => codec::session_of(bytes).map(|session| (session, Err(e))),
            })
            .await;
        match received {
            Err(e) => return e,
            Ok(Err(e)) => tracing::warn!(error = %e, "link message without a session; dropped"),
            Ok(Ok((session, delivery))) => {
                if let Some(delivery) = routes.deliver(session, delivery) {
                    unrouted(SessionId(session), delivery);
                }
            }
        }
    }
}

/// A session's incoming messages, and the count of items taken for which no credit was
/// returned yet.
pub(super) struct Inbound {
    queue: mpsc::UnboundedReceiver<Delivery>,
    taken: u32,
}

impl Inbound {
    /// The next message; `None` once the route is gone (the link is being torn down).
    pub(super) async fn recv(&mut self) -> Option<Delivery> {
        self.queue.recv().await
    }

    /// Counts one item taken; every [`CREDIT_BATCH`] items, the credit to send the peer.
    pub(super) fn took_item(&mut self) -> Option<Message> {
        self.taken += 1;
        (self.taken >= CREDIT_BATCH).then(|| {
            self.taken -= CREDIT_BATCH;
            Message::Credit {
                count: CREDIT_BATCH,
            }
        })
    }
}

/// How many more items of a session this end may send before its peer takes some.
pub(super) struct SendCredits(Arc<Semaphore>);

impl SendCredits {
    /// Waits for a credit and spends it.
    ///
    /// # Errors
    /// The session's route was removed: it ended.
    pub(super) async fn spend(&self) -> Result<(), AcquireError> {
        self.0
            .acquire()
            .await
            .map(tokio::sync::SemaphorePermit::forget)
    }
}
