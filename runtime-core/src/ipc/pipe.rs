//! One-way byte pipes between processes over iceoryx2, with async wake-ups and backpressure.
//!
//! ```text
//!  writer process                                   reader process
//!  PipeWriter --[u8] sample (shared memory)-------> PipeReader
//!      |  ring(data slot) ----------------------->  Inbox: waiter thread -> slot[data] += 1
//!  Inbox: slot[space] += 1 <--- ring(space slot) --   (after each receive)
//! ```
//!
//! Each process has one [`Inbox`]: an iceoryx2 event service that peers ring with a slot
//! number, and one tokio task that waits on its socket through tokio's reactor and bumps that
//! slot's version counter, waking the tasks watching it. Counters rather than one-permit
//! notifications, so that two pipes may share a slot: a shared slot costs a spurious
//! wake-up, never a lost one. So a process costs one sleeping task however many pipes it
//! holds, and an idle pipe costs nothing.
//! A reader of a busy pipe (its last message under a millisecond old) polls for up to 50 µs,
//! yielding to its runtime's other tasks between polls, before it sleeps: waking a sleeping
//! process costs 50-150 µs on the VMs this runs on, a poll that catches the next message a few.
//! A pipe carrying a steady 20 ms stream never spins (docs/ipc-design.md).
//!
//! Backpressure: the subscriber buffer is bounded; when it is full, `send` fails with
//! `UnableToDeliver` (our backpressure handler asks for that instead of iceoryx2's busy retry)
//! and the writer waits for the reader's "space" ring, then sends again. Nothing is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use iceoryx2::port::BackpressureAction;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;

pub use super::inbox::{Doorbell, Inbox};

/// The iceoryx2 service flavour: inter-process, with ports that may move between threads.
pub type Ipc = ipc_threadsafe::Service;

/// How long a reader of a busy session pipe polls (yielding to other tasks between polls)
/// before it sleeps on the inbox, unless set with [`PipeReader::with_spin`] (the binaries'
/// `--ipc-spin-us`, env `REMOTEMEDIA_IPC_SPIN_US`; 0 turns spinning off).
pub const SPIN: Duration = Duration::from_micros(50);
/// A pipe counts as busy while messages arrive at most this far apart: only then does a
/// reader spin. A stream at a steady 20 ms cadence never spins (each message costs one
/// wake-up, no CPU in between); back-to-back traffic is caught by the spin without any
/// wake-up. (The gap between the last two messages, not the age of the last one: judged by
/// age, every reader spun after every message, and 500 sessions at 50 frames/s spent most
/// of a core polling.)
const BUSY: Duration = Duration::from_millis(1);
/// How often a writer to a shared pipe retries when the buffer is full: a shared pipe's
/// reader cannot ring every writer, and shared pipes carry only rare control messages.
const SHARED_RETRY: std::time::Duration = std::time::Duration::from_millis(1);

/// An error from iceoryx2 (or the OS under it), kept as the source of an [`IpcError`]:
/// iceoryx2 has one error type per operation, and callers only report them.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why an IPC operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    /// Creating or opening a service or port failed.
    #[error("iceoryx2 {what} {name} could not be set up")]
    Setup {
        /// What was being created, e.g. "event service".
        what: &'static str,
        /// The service name.
        name: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// Sending or receiving failed.
    #[error("iceoryx2 {what} failed")]
    Io {
        /// The operation.
        what: &'static str,
        /// Why.
        #[source]
        source: Cause,
    },
    /// A message was sent on a pipe nobody reads (the peer is gone).
    #[error("no reader is connected to the pipe")]
    NoReader,
    /// The inbox this pipe waits on was closed.
    #[error("the inbox was closed")]
    InboxClosed,
    /// The slot number is beyond the inbox's capacity.
    #[error("slot {slot} is beyond the inbox's {capacity} slots")]
    SlotOutOfRange {
        /// The slot asked for.
        slot: usize,
        /// How many the inbox has.
        capacity: usize,
    },
}

fn closed() -> IpcError {
    IpcError::InboxClosed
}

/// The error of setting up `what` named `name`, from its cause.
pub(super) fn setup<E>(what: &'static str, name: &str) -> impl FnOnce(E) -> IpcError
where
    E: Into<Cause>,
{
    let name = name.to_owned();
    move |e| IpcError::Setup {
        what,
        name,
        source: e.into(),
    }
}

/// The error of the operation `what`, from its cause.
pub(super) fn io<E>(what: &'static str) -> impl FnOnce(E) -> IpcError
where
    E: Into<Cause>,
{
    move |e| IpcError::Io {
        what,
        source: e.into(),
    }
}

pub(super) fn service_name(name: &str) -> Result<ServiceName, IpcError> {
    ServiceName::new(name).map_err(setup("service name", name))
}

/// Creates this process's iceoryx2 node, named `name`, after removing what dead processes left
/// behind (their nodes, ports and any service only they held), so a restarted worker or
/// client starts clean. Returns the node and how many dead nodes were cleaned up.
///
/// # Errors
/// The node name is invalid or the node could not be created.
pub fn create_node(name: &str) -> Result<(Node<Ipc>, u64), IpcError> {
    let node_name = NodeName::new(name).map_err(setup("node name", name))?;
    let node = NodeBuilder::new()
        .name(&node_name)
        .create::<Ipc>()
        .map_err(setup("node", name))?;
    let cleaned = node.try_cleanup_dead_nodes();
    if cleaned.failed_cleanups > 0 {
        tracing::warn!(
            failed = cleaned.failed_cleanups,
            "could not clean up some dead iceoryx2 nodes"
        );
    }
    Ok((node, cleaned.cleanups))
}

/// Names of the services behind one pipe.
fn data_service(pipe: &str) -> String {
    format!("{pipe}/data")
}

/// The sending end of a pipe.
pub struct PipeWriter {
    service: DataService,
    publisher: Publisher<Ipc, [u8], ()>,
    reader_bell: Doorbell,
    data_slot: usize,
    space: SpaceWait,
}

/// How a writer learns that a full pipe has room again.
enum SpaceWait {
    /// The reader rings this slot of the writer's inbox when it frees room (see
    /// [`PipeReader::try_recv`] for when exactly).
    Ring { slot: usize, inbox: Arc<Inbox> },
    /// A shared pipe: retry after [`SHARED_RETRY`].
    Retry,
}

/// The receiving end of a pipe.
pub struct PipeReader {
    subscriber: Subscriber<Ipc, [u8], ()>,
    /// `None` for a shared pipe, whose writers retry instead.
    writer_bell: Option<Doorbell>,
    /// How long to poll before sleeping while the pipe is busy: [`SPIN`] for a session pipe,
    /// zero for a shared pipe (rare messages, and each poll scans every writer's slot).
    spin: Duration,
    /// When the last messages arrived.
    arrivals: Mutex<Arrivals>,
    /// Messages taken since the pipe was last found empty.
    run: AtomicUsize,
    /// The writer's "space" slot is rung after every `space_every`-th message of a run.
    space_every: usize,
    data_slot: usize,
    space_slot: usize,
    inbox: Arc<Inbox>,
}

/// The last two arrival times on a pipe, which tell whether it is busy (see [`BUSY`]).
#[derive(Clone, Copy, Debug, Default)]
struct Arrivals {
    last: Option<Instant>,
    gap: Option<Duration>,
}

impl Arrivals {
    fn record(&mut self, now: Instant) {
        self.gap = self.last.map(|last| now.saturating_duration_since(last));
        self.last = Some(now);
    }

    /// Messages came back to back and the last one is recent.
    fn busy(&self, now: Instant) -> bool {
        self.gap.is_some_and(|gap| gap <= BUSY)
            && self
                .last
                .is_some_and(|last| now.saturating_duration_since(last) <= BUSY)
    }
}

/// Where a pipe's two ends are woken: the reader's inbox slot for "data", the writer's for
/// "space".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slots {
    /// Slot in the reader's inbox rung when a message was sent.
    pub data: usize,
    /// Slot in the writer's inbox rung when a message was consumed.
    pub space: usize,
}

type DataService = iceoryx2::service::port_factory::publish_subscribe::PortFactory<Ipc, [u8], ()>;

fn data_port_factory(
    node: &Node<Ipc>,
    pipe: &str,
    depth: usize,
    writers: usize,
) -> Result<DataService, IpcError> {
    let name = data_service(pipe);
    node.service_builder(&service_name(&name)?)
        .publish_subscribe::<[u8]>()
        .subscriber_max_buffer_size(depth)
        // Without this a full buffer overwrites its oldest message: a silent drop.
        .enable_safe_overflow(false)
        .max_publishers(writers)
        .max_nodes(writers.max(2))
        .max_subscribers(1)
        .history_size(0)
        .open_or_create()
        .map_err(setup("publish-subscribe service", &name))
}

impl PipeWriter {
    /// Opens the writing end of pipe `pipe`: `depth` messages may be in flight; the reader's
    /// inbox is `reader_inbox`; `inbox` is this process's.
    ///
    /// # Errors
    /// A service or port could not be created.
    pub fn open(
        node: &Node<Ipc>,
        pipe: &str,
        depth: usize,
        slots: Slots,
        reader_inbox: &str,
        inbox: Arc<Inbox>,
    ) -> Result<Self, IpcError> {
        let space = SpaceWait::Ring {
            slot: slots.space,
            inbox,
        };
        Self::create(node, pipe, depth, 1, slots.data, reader_inbox, space)
    }

    /// Opens a writing end of shared pipe `pipe`, which up to `writers` processes write to
    /// and one reads (see [`PipeReader::open_shared`]). When the reader's buffer is full the
    /// writer retries every millisecond: shared pipes carry rare control messages.
    ///
    /// # Errors
    /// A service or port could not be created.
    pub fn open_shared(
        node: &Node<Ipc>,
        pipe: &str,
        depth: usize,
        writers: usize,
        data_slot: usize,
        reader_inbox: &str,
    ) -> Result<Self, IpcError> {
        Self::create(
            node,
            pipe,
            depth,
            writers,
            data_slot,
            reader_inbox,
            SpaceWait::Retry,
        )
    }

    fn create(
        node: &Node<Ipc>,
        pipe: &str,
        depth: usize,
        writers: usize,
        data_slot: usize,
        reader_inbox: &str,
        space: SpaceWait,
    ) -> Result<Self, IpcError> {
        let service = data_port_factory(node, pipe, depth, writers)?;
        let publisher = service
            .publisher_builder()
            .initial_max_slice_len(4096)
            .allocation_strategy(AllocationStrategy::PowerOfTwo)
            .max_loaned_samples(2)
            .set_backpressure_handler(|_| BackpressureAction::DiscardDataAndFail)
            .create()
            .map_err(setup("publisher", pipe))?;
        Ok(Self {
            service,
            publisher,
            reader_bell: Doorbell::open(node, reader_inbox)?,
            data_slot,
            space,
        })
    }

    /// True while a reader holds the other end (a reader whose process died counts until
    /// its resources are cleaned up).
    #[must_use]
    pub fn reader_connected(&self) -> bool {
        self.service.dynamic_config().number_of_subscribers() > 0
    }

    /// Sends `bytes` if the reader's buffer has room, without waiting: false when it is full.
    ///
    /// # Errors
    /// No reader is connected, or iceoryx2 failed.
    pub fn try_send(&self, bytes: &[u8]) -> Result<bool, IpcError> {
        if self.try_publish(bytes)? {
            self.ring_reader()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Puts `bytes` in the reader's buffer if it has room, without ringing the reader: false
    /// when it is full. The caller rings ([`ring_reader`](Self::ring_reader)) once for a
    /// batch, which is what makes a batch cheaper than its messages sent one by one.
    ///
    /// # Errors
    /// No reader is connected, or iceoryx2 failed.
    fn try_publish(&self, bytes: &[u8]) -> Result<bool, IpcError> {
        let sample = self
            .publisher
            .loan_slice_uninit(bytes.len())
            .map_err(io("loan"))?;
        match sample.write_from_slice(bytes).send() {
            Ok(0) if !self.reader_connected() => Err(IpcError::NoReader),
            Ok(0) | Err(iceoryx2::port::SendError::UnableToDeliver) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(io("send")(e)),
        }
    }

    /// Rings the reader's data slot: it wakes and takes what was published.
    ///
    /// # Errors
    /// The event could not be sent.
    fn ring_reader(&self) -> Result<(), IpcError> {
        self.reader_bell.ring(self.data_slot)
    }

    /// Sends `bytes`, waiting while the reader's buffer is full.
    ///
    /// # Errors
    /// No reader is connected, or iceoryx2 failed.
    pub async fn send(&self, bytes: &[u8]) -> Result<(), IpcError> {
        self.send_batch(std::slice::from_ref(&bytes)).await
    }

    /// Sends every message of `batch` in order, waiting while the reader's buffer is full,
    /// and rings the reader once at the end rather than once per message (and before each
    /// wait, so a reader asleep on a full buffer wakes to empty it).
    ///
    /// # Errors
    /// No reader is connected, or iceoryx2 failed; messages before the failing one were sent.
    pub async fn send_batch<B: AsRef<[u8]>>(&self, batch: &[B]) -> Result<(), IpcError> {
        let mut unrung = false;
        for bytes in batch {
            loop {
                // Watch before trying, so a ring between a failed try and the wait is not lost.
                let mut space = match &self.space {
                    SpaceWait::Ring { slot, inbox } => Some(inbox.watch(*slot)?),
                    SpaceWait::Retry => None,
                };
                if self.try_publish(bytes.as_ref())? {
                    unrung = true;
                    break;
                }
                if std::mem::take(&mut unrung) {
                    self.ring_reader()?;
                }
                // The reader's buffer is full and the sample was not delivered: wait for the
                // reader to take something, then send it again.
                match &mut space {
                    Some(space) => space.changed().await.map_err(|_| closed())?,
                    None => tokio::time::sleep(SHARED_RETRY).await,
                }
            }
        }
        if unrung {
            self.ring_reader()?;
        }
        Ok(())
    }
}

impl PipeReader {
    /// Opens the reading end of pipe `pipe` (see [`PipeWriter::open`]).
    ///
    /// # Errors
    /// A service or port could not be created.
    pub fn open(
        node: &Node<Ipc>,
        pipe: &str,
        depth: usize,
        slots: Slots,
        writer_inbox: &str,
        inbox: Arc<Inbox>,
    ) -> Result<Self, IpcError> {
        let writer_bell = Some(Doorbell::open(node, writer_inbox)?);
        Self::create(node, pipe, depth, 1, slots, writer_bell, inbox)
    }

    /// Opens the reading end of a shared pipe (see [`PipeWriter::open_shared`]); it is woken
    /// on `data_slot` of `inbox`.
    ///
    /// # Errors
    /// A service or port could not be created.
    pub fn open_shared(
        node: &Node<Ipc>,
        pipe: &str,
        depth: usize,
        writers: usize,
        data_slot: usize,
        inbox: Arc<Inbox>,
    ) -> Result<Self, IpcError> {
        let slots = Slots {
            data: data_slot,
            space: 0,
        };
        Self::create(node, pipe, depth, writers, slots, None, inbox)
    }

    /// Polls a busy pipe for up to `spin` before sleeping (zero: never polls).
    #[must_use]
    pub fn with_spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    fn create(
        node: &Node<Ipc>,
        pipe: &str,
        depth: usize,
        writers: usize,
        slots: Slots,
        writer_bell: Option<Doorbell>,
        inbox: Arc<Inbox>,
    ) -> Result<Self, IpcError> {
        let subscriber = data_port_factory(node, pipe, depth, writers)?
            .subscriber_builder()
            .buffer_size(depth)
            .create()
            .map_err(setup("subscriber", pipe))?;
        // A shared pipe carries rare control messages, and each poll scans every writer.
        let spin = if writer_bell.is_some() {
            SPIN
        } else {
            Duration::ZERO
        };
        Ok(Self {
            subscriber,
            writer_bell,
            spin,
            arrivals: Mutex::new(Arrivals::default()),
            run: AtomicUsize::new(0),
            space_every: (depth / 2).max(1),
            data_slot: slots.data,
            space_slot: slots.space,
            inbox,
        })
    }

    /// Receives the next message, waiting for one.
    ///
    /// # Errors
    /// iceoryx2 failed.
    pub async fn recv(&self) -> Result<Vec<u8>, IpcError> {
        self.recv_with(<[u8]>::to_vec).await
    }

    /// Receives the next message, waiting for one, and returns what `read` makes of its bytes
    /// while they are still in shared memory (so a decoder copies them once, not twice).
    ///
    /// # Errors
    /// iceoryx2 failed.
    pub async fn recv_with<T>(&self, mut read: impl FnMut(&[u8]) -> T) -> Result<T, IpcError> {
        loop {
            let mut data = self.inbox.watch(self.data_slot)?;
            if let Some(bytes) = self.try_recv_with(&mut read)? {
                self.arrivals
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .record(Instant::now());
                return Ok(bytes);
            }
            if !self.spin_caught_one().await {
                data.changed().await.map_err(|_| closed())?;
            }
        }
    }

    /// Polls for a message for up to `spin` if the pipe is busy, yielding between polls so
    /// the tasks that produce the next message (in this process) are not held up; true if
    /// one arrived. Blocking the thread instead held up exactly those tasks and made round
    /// trips 3x slower than with no spin at all (docs/ipc-design.md).
    async fn spin_caught_one(&self) -> bool {
        let busy = self
            .arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .busy(Instant::now());
        if self.spin.is_zero() || !busy {
            return false;
        }
        let deadline = Instant::now() + self.spin;
        while Instant::now() < deadline {
            if self.subscriber.has_samples().unwrap_or(false) {
                return true;
            }
            tokio::task::yield_now().await;
        }
        false
    }

    /// Connects to the writers that exist now. A reader otherwise finds writers only when it
    /// next receives, and a writer that sends and goes away in between takes its messages
    /// along; call this once the peer's writer is known to exist.
    ///
    /// # Errors
    /// iceoryx2 could not connect to a writer.
    pub fn connect(&self) -> Result<(), IpcError> {
        self.subscriber.update_connections().map_err(io("connect"))
    }

    /// Takes a message if one is there.
    ///
    /// The writer's "space" slot is rung only when the `space_every`-th message in a row (half
    /// the buffer) has been taken without finding the pipe empty, not after every message: a
    /// ring is a system call on both sides, and a stream that keeps up never fills the buffer.
    /// A writer waits only after finding the buffer full; the `depth` messages then queued are
    /// taken in one unbroken run, which passes a multiple of `space_every`, so that writer is
    /// always rung after it looked.
    ///
    /// # Errors
    /// iceoryx2 failed.
    pub fn try_recv(&self) -> Result<Option<Vec<u8>>, IpcError> {
        self.try_recv_with(<[u8]>::to_vec)
    }

    /// Takes a message if one is there, returning what `read` makes of its bytes (see
    /// [`recv_with`](Self::recv_with) and [`try_recv`](Self::try_recv)).
    ///
    /// # Errors
    /// iceoryx2 failed.
    pub fn try_recv_with<T>(&self, read: impl FnOnce(&[u8]) -> T) -> Result<Option<T>, IpcError> {
        let sample = self.subscriber.receive().map_err(io("receive"))?;
        let Some(sample) = sample else {
            self.run.store(0, Ordering::Relaxed);
            return Ok(None);
        };
        let bytes = read(sample.payload());
        drop(sample);
        let run = self.run.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bell) = &self.writer_bell
            && run.is_multiple_of(self.space_every)
        {
            bell.ring(self.space_slot)?;
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests;
