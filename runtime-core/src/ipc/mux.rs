//! Many sessions over one pipe pair: what both ends of a link share.
//!
//! * [`Outbox`]: sessions queue messages; one task writes them to the pipe and rings the
//!   reader once per batch, so under load a wake-up carries many messages rather than one.
//! * [`Routes`] and [`spawn_demux`]: one task reads a pipe and hands each message to its session's
//!   queue, or takes a [`Credit`](Message::Credit) straight to the session's send credits.
//! * [`Inbound`] and [`SendCredits`]: per-session flow control (see [`super::link`]). Queues
//!   are unbounded because credits bound them: a session never has more than
//!   [`SESSION_WINDOW`] items in flight each way, plus a few control messages. A peer that
//!   ignores its credits would grow them without end, so a session that has more than
//!   [`MAX_UNTAKEN_ITEMS`] items waiting is ended ([`RouteEnded::Overrun`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use super::codec::{self, DecodeError, EncodeError, Envelope, Message};
use super::link::{CREDIT_BATCH, MAX_MESSAGE_BYTES, SESSION_WINDOW, SessionId};
use super::pipe::{IpcError, PipeReader, PipeWriter};

/// Most messages written per batch: bounds how long the first of them waits for its ring.
const MAX_BATCH: usize = 64;

/// Items of one session that may wait in its queue, not yet taken, before the peer is taken
/// to ignore its credits: the credited window, and as much again for the error items a
/// worker sends about inputs it could not use at all (undecodable, or sent to a session a
/// lost node failed), which spend no credit: a worker waiting for credits there could not
/// see the client's `Close`.
pub(super) const MAX_UNTAKEN_ITEMS: u32 = 2 * SESSION_WINDOW;

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
    let bytes = codec::encode(&Envelope {
        session: session.0,
        message,
    })?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(EncodeError::TooLarge {
            len: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    Ok(bytes)
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
    untaken: Arc<Untaken>,
    /// Turns true when the peer's `Close` arrives, ahead of whatever is queued before it.
    closing: watch::Sender<bool>,
}

/// Items queued for a session and not yet taken, shared by its route and its [`Inbound`].
#[derive(Default)]
struct Untaken {
    items: AtomicU32,
    /// Set when the peer overran [`MAX_UNTAKEN_ITEMS`]: the route was removed for it.
    overrun: AtomicBool,
}

/// Why a session's [`Inbound`] delivers no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum RouteEnded {
    /// The route was removed: the link is being torn down, or the session ended.
    #[error("the link's connection was dropped")]
    Dropped,
    /// The peer sent more items than its credits allow; the session is ended so that it
    /// cannot grow this process's memory.
    #[error(
        "the link's flow control was broken: more than {MAX_UNTAKEN_ITEMS} items of this session were waiting to be taken, beyond the sender's credits"
    )]
    Overrun,
}

/// Whether `delivery` is an item (counted against credits) rather than a control message.
fn is_item(delivery: &Delivery) -> bool {
    match delivery {
        Ok(Message::Input(_) | Message::Output { .. } | Message::Error { .. }) => true,
        Ok(_) => false,
        // Undecodable messages are almost always items: the control messages are tiny.
        Err(_) => true,
    }
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
        let untaken = Arc::new(Untaken::default());
        let (closing, closing_seen) = watch::channel(false);
        routes.insert(
            session.0,
            Route {
                inbound,
                credits: credits.clone(),
                untaken: untaken.clone(),
                closing,
            },
        );
        let inbound = Inbound {
            queue,
            untaken,
            taken: 0,
            closing: closing_seen,
        };
        let credits = SendCredits {
            credits,
            untaken: inbound.untaken.clone(),
        };
        Some((inbound, credits))
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

    /// Hands `delivery` to `session`; gives it back if the session is not routed. A session
    /// whose peer overran its credits is unrouted here (its [`Inbound`] then says why).
    fn deliver(&self, session: u64, delivery: Delivery) -> Option<Delivery> {
        let mut routes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(route) = routes.get(&session) else {
            return Some(delivery);
        };
        if let Ok(Message::Credit { count }) = delivery {
            // More than a window would let the peer's bug overflow our queues: clamp.
            let room = (SESSION_WINDOW as usize).saturating_sub(route.credits.available_permits());
            route.credits.add_permits((count as usize).min(room));
            return None;
        }
        if let Ok(Message::Close) = delivery {
            // Queued as well, but a session blocked on a full pipeline (its inputs untaken)
            // must hear it now, not after the inputs queued before it.
            route.closing.send_replace(true);
        }
        if is_item(&delivery)
            && route.untaken.items.fetch_add(1, Ordering::AcqRel) >= MAX_UNTAKEN_ITEMS
        {
            route.untaken.overrun.store(true, Ordering::Release);
            if let Some(route) = routes.remove(&session) {
                route.credits.close();
            }
            return Some(delivery);
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
    untaken: Arc<Untaken>,
    taken: u32,
    closing: watch::Receiver<bool>,
}

impl Inbound {
    /// Completes once the peer's `Close` for this session arrived, whatever is queued before
    /// it; never, if the route ends without one.
    pub(super) fn close_requested(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.clone();
        async move {
            if closing.wait_for(|closing| *closing).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The next message.
    ///
    /// # Errors
    /// The route is gone ([`RouteEnded`] says why); a session whose peer overran its
    /// credits gets that at once, without the rest of its queue.
    pub(super) async fn recv(&mut self) -> Result<Delivery, RouteEnded> {
        let overrun = || {
            self.untaken
                .overrun
                .load(Ordering::Acquire)
                .then_some(RouteEnded::Overrun)
        };
        if let Some(ended) = overrun() {
            return Err(ended);
        }
        let delivery = self.queue.recv().await;
        if let Some(ended) = overrun() {
            return Err(ended);
        }
        let delivery = delivery.ok_or(RouteEnded::Dropped)?;
        if is_item(&delivery) {
            self.untaken.items.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(delivery)
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
pub(super) struct SendCredits {
    credits: Arc<Semaphore>,
    /// Shared with the session's [`Inbound`]: why the route ended, when it did.
    untaken: Arc<Untaken>,
}

impl SendCredits {
    /// Waits for a credit and spends it.
    ///
    /// # Errors
    /// The session's route was removed; [`RouteEnded`] says why, as [`Inbound::recv`] does.
    pub(super) async fn spend(&self) -> Result<(), RouteEnded> {
        match self.credits.acquire().await {
            Ok(permit) => {
                permit.forget();
                Ok(())
            }
            Err(_closed) if self.untaken.overrun.load(Ordering::Acquire) => {
                Err(RouteEnded::Overrun)
            }
            Err(_closed) => Err(RouteEnded::Dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{RuntimeData, TransportData};

    fn input(n: u64) -> Delivery {
        Ok(Message::Input(
            TransportData::new(RuntimeData::Text(format!("item {n}"))).with_sequence(n),
        ))
    }

    #[tokio::test]
    async fn a_peer_within_its_credits_is_never_cut_off() {
        let routes = Routes::default();
        let id = SessionId(7);
        let (mut inbound, _credits) = routes.add(id).unwrap();
        // Ten rounds of a full allowance, each taken before the next: well past the limit in
        // total, never past it at once.
        for round in 0..10 {
            for n in 0..u64::from(MAX_UNTAKEN_ITEMS) {
                assert!(routes.deliver(id.0, input(n)).is_none(), "round {round}");
            }
            // Control messages do not count.
            assert!(routes.deliver(id.0, Ok(Message::EndInput)).is_none());
            for _ in 0..=MAX_UNTAKEN_ITEMS {
                inbound.recv().await.unwrap().unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_peer_that_ignores_its_credits_ends_the_session_and_stops_being_queued() {
        let routes = Routes::default();
        let id = SessionId(7);
        let (mut inbound, credits) = routes.add(id).unwrap();
        for n in 0..u64::from(MAX_UNTAKEN_ITEMS) {
            assert!(routes.deliver(id.0, input(n)).is_none());
        }
        // One more than a correct peer can have waiting: refused and unrouted.
        assert!(routes.deliver(id.0, input(99)).is_some());
        assert!(routes.deliver(id.0, input(100)).is_some());
        // The session learns why at once, without working through what is queued.
        assert_eq!(inbound.recv().await.unwrap_err(), RouteEnded::Overrun);
        assert!(
            credits.spend().await.is_err(),
            "a send waiting for credits fails"
        );
        // Another session on the same pipe is untouched.
        let other = SessionId(8);
        let (mut other_inbound, _) = routes.add(other).unwrap();
        assert!(routes.deliver(other.0, input(1)).is_none());
        assert!(other_inbound.recv().await.unwrap().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_close_is_heard_ahead_of_the_inputs_queued_before_it() {
        let routes = Routes::default();
        let id = SessionId(7);
        let (inbound, _credits) = routes.add(id).unwrap();
        let close_requested = inbound.close_requested();
        tokio::pin!(close_requested);
        assert!(routes.deliver(id.0, input(1)).is_none());
        let quiet = tokio::time::timeout(Duration::from_secs(1), &mut close_requested).await;
        assert!(quiet.is_err(), "no close yet");
        assert!(routes.deliver(id.0, Ok(Message::Close)).is_none());
        tokio::time::timeout(Duration::from_secs(1), close_requested)
            .await
            .expect("the close is heard with the input still queued");
    }

    #[tokio::test]
    async fn a_removed_route_says_the_connection_was_dropped() {
        let routes = Routes::default();
        let id = SessionId(7);
        let (mut inbound, _) = routes.add(id).unwrap();
        routes.remove(id);
        assert_eq!(inbound.recv().await.unwrap_err(), RouteEnded::Dropped);
    }
}
