//! A process's wake-up [`Inbox`] and the [`Doorbell`] peers ring it with (see the pipe
//! module's docs for how pipes use them): an iceoryx2 event service, one tokio task per process
//! waiting on its socket through tokio's reactor, and a version counter per slot.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::prelude::*;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

use super::pipe::{Ipc, IpcError, io, service_name, setup};

/// Processes that may share one inbox or shared pipe (a worker and its clients).
const MAX_PROCESSES: usize = 256;

/// A process's wake-up inbox: peers ring a slot; the task waiting on that slot wakes.
pub struct Inbox {
    name: String,
    slots: Arc<[watch::Sender<u64>]>,
    waiter: tokio::task::JoinHandle<()>,
}

impl Inbox {
    /// Creates (or opens) event service `name` with `slots` slots and starts its waiter task
    /// on the current tokio runtime.
    ///
    /// # Errors
    /// The service or listener could not be created, or this is not inside a tokio runtime.
    pub fn create(node: &Node<Ipc>, name: &str, slots: usize) -> Result<Self, IpcError> {
        let listener = event_service(node, name, slots)?
            .listener_builder()
            .create()
            .map_err(setup("listener", name))?;
        let notifies: Arc<[watch::Sender<u64>]> =
            (0..slots).map(|_| watch::Sender::new(0)).collect();
        tokio::runtime::Handle::try_current().map_err(setup("inbox waiter", name))?;
        let readable =
            ListenerFd::register(&listener).map_err(setup("inbox registration", name))?;
        let waiter = Waiter {
            readable,
            listener,
            slots: notifies.clone(),
        };
        Ok(Self {
            name: name.to_owned(),
            slots: notifies,
            waiter: tokio::spawn(waiter.run()),
        })
    }

    /// The service name peers open a [`Doorbell`] on.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of slots.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Starts watching `slot`: rings before this call count as seen, so take the watch
    /// *before* checking the condition it guards, then await `changed()` on it.
    ///
    /// # Errors
    /// [`IpcError::SlotOutOfRange`].
    pub fn watch(&self, slot: usize) -> Result<watch::Receiver<u64>, IpcError> {
        self.slots
            .get(slot)
            .map(watch::Sender::subscribe)
            .ok_or(IpcError::SlotOutOfRange {
                slot,
                capacity: self.slots.len(),
            })
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.waiter.abort();
    }
}

/// The listener's socket, registered with tokio's reactor: a ring wakes the waiter task
/// straight from epoll, with no thread of our own in between (a thread hop per message cost
/// about as much as the whole Unix-socket round trip; docs/ipc-design.md).
struct ListenerFd(RawFd);

impl ListenerFd {
    /// Registers `listener`'s socket with the current runtime's reactor, for reading.
    #[allow(unsafe_code)]
    fn register(listener: &Listener<Ipc>) -> std::io::Result<AsyncFd<Self>> {
        // SAFETY: `native_handle` and `register_with_interest` are unsafe because the number
        // must stay a valid descriptor, not be closed by us, and not outlive its owner while
        // registered. We never close it, and the `AsyncFd` is only kept in `Waiter` next to
        // the listener, declared first so it deregisters before the listener closes the
        // socket. Tokio only polls it for readiness; iceoryx2 does the reading.
        unsafe {
            let fd = Self(listener.file_descriptor().native_handle());
            AsyncFd::register_with_interest(fd, Interest::READABLE).map_err(std::io::Error::from)
        }
    }
}

impl AsRawFd for ListenerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Turns rings into slot counter bumps. Field order matters: `readable` deregisters the
/// listener's socket before `listener` closes it.
struct Waiter {
    readable: AsyncFd<ListenerFd>,
    listener: Listener<Ipc>,
    slots: Arc<[watch::Sender<u64>]>,
}

impl Waiter {
    async fn run(self) {
        loop {
            let mut ready = match self.readable.readable().await {
                Ok(ready) => ready,
                Err(e) => {
                    tracing::warn!(error = %e, "inbox wait failed");
                    return;
                }
            };
            let mut rang = false;
            let result = self.listener.try_wait(|activation| {
                rang = true;
                if let Some(slot) = self.slots.get(activation.id.as_value()) {
                    slot.send_modify(|version| *version = version.wrapping_add(1));
                }
            });
            if let Err(e) = result {
                tracing::warn!(error = ?e, "inbox wait failed");
                return;
            }
            // Only once drained: tokio keeps the readiness if a ring arrived meanwhile.
            if !rang {
                ready.clear_ready();
            }
        }
    }
}

type EventService = iceoryx2::service::port_factory::event::PortFactory<Ipc>;

fn event_service(node: &Node<Ipc>, name: &str, slots: usize) -> Result<EventService, IpcError> {
    node.service_builder(&service_name(name)?)
        .event()
        .event_id_max_value(slots)
        // Each process sharing the inbox rings it through at most three doorbells (a
        // client: the control pipe, its up pipe's data, its down pipe's space). Not derived
        // from the slot count, which is small and shared.
        .max_notifiers(4 * MAX_PROCESSES)
        .max_nodes(MAX_PROCESSES)
        .open_or_create()
        .map_err(setup("event service", name))
}

/// Rings slots of another process's [`Inbox`].
pub struct Doorbell {
    notifier: Notifier<Ipc>,
}

impl Doorbell {
    /// Creates inbox service `name` (with `slots` slots) for a peer that will listen on it
    /// but has not started yet, and a doorbell to ring it.
    ///
    /// # Errors
    /// The service or notifier could not be created.
    pub fn create(node: &Node<Ipc>, name: &str, slots: usize) -> Result<Self, IpcError> {
        let notifier = event_service(node, name, slots)?
            .notifier_builder()
            .create()
            .map_err(setup("notifier", name))?;
        Ok(Self { notifier })
    }

    /// Opens the inbox service `name` for ringing.
    ///
    /// # Errors
    /// The service does not exist or the notifier could not be created.
    pub fn open(node: &Node<Ipc>, name: &str) -> Result<Self, IpcError> {
        let event = node
            .service_builder(&service_name(name)?)
            .event()
            .open()
            .map_err(setup("event service", name))?;
        let notifier = event
            .notifier_builder()
            .create()
            .map_err(setup("notifier", name))?;
        Ok(Self { notifier })
    }

    /// Rings `slot`.
    ///
    /// # Errors
    /// The event could not be sent.
    pub fn ring(&self, slot: usize) -> Result<(), IpcError> {
        self.notifier
            .notify_with_custom_event_id(EventId::new(slot))
            .map(|_| ())
            .map_err(io("ring"))
    }
}
