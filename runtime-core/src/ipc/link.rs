//! Names and slot numbers on one link: pure functions, so both ends (and the Python package)
//! agree on them without talking first.
//!
//! ```text
//! worker node          rm-worker.<link>
//! worker inbox         remotemedia/<link>/worker/inbox     slot 0: control, 1..: clients
//! control pipe         remotemedia/<link>/control          every client writes Open here
//! client node          rm-client.<link>.<client id, 8 hex digits>
//! client inbox         remotemedia/<link>/client/<client id>/inbox
//! client pipes         remotemedia/<link>/w/<worker node id, 32 hex>/c/<client id>/{up,down}
//! ```
//!
//! A client's pipes are named after the worker too: a client that outlives a worker talks to
//! its successor on new pipes while sessions on the old ones still wind down.
//!
//! All sessions of one client process share its two pipes: every message carries its session
//! id, and each end routes what it receives to the session's task. One pipe pair per client
//! rather than per session, because per-session pipes cost a set of iceoryx2 services (files,
//! ports, shared memory) per session opened (about 17 ms each) and a wake-up per message,
//! where a shared pipe is written by one task that rings its reader once per batch.
//!
//! A session id is the client id (random per client process) in its upper 32 bits and the
//! client's session counter in its lower 32, so the worker can tell which client process owns
//! a session (to reclaim it when that process dies) and which client's pipes to answer on.
//!
//! Flow control per session, so that one session whose reader is slow cannot fill the shared
//! pipe: a sender may have [`SESSION_WINDOW`] items (inputs one way, outputs and errors the
//! other) of a session that its peer has not yet taken; the peer returns credits in
//! [`Credit`](super::codec::Message::Credit) messages of [`CREDIT_BATCH`] each. Both are
//! protocol constants, so both ends agree without negotiating.
//!
//! The worker cannot tell a client which of its slots to ring before they can talk, so both
//! ends derive slots from the client id. Clients whose ids are equal modulo [`SLOT_SPREAD`]
//! share slots in the worker's inbox; a shared slot costs a spurious wake-up, never a lost
//! one (see [`super::pipe`]).

use std::fmt;

/// Link name the binaries use when neither their flag nor [`LINK_ENV`] names one.
pub const DEFAULT_LINK: &str = "remotemedia";
/// Environment variable the binaries read the link's name from (clap `env`); the library
/// reads no environment.
pub const LINK_ENV: &str = "REMOTEMEDIA_IPC_NAME";
/// Distinct slot pairs in a worker's inbox. Few, because every wake-up of the worker's inbox
/// resets each slot's counter (iceoryx2 keeps one atomic counter per event id and swaps them
/// all): with 1,024 pairs that was 2,049 atomic swaps per wake-up, a fifth of a busy
/// worker's CPU (docs/benchmarks.md section 7). A pod has a handful of client processes,
/// so 32 pairs seldom put two on one slot, and that costs only a spurious wake-up.
pub const SLOT_SPREAD: u32 = 32;
/// Slots in a worker's inbox: the control slot and a pair per spread.
pub const WORKER_INBOX_SLOTS: usize = 1 + 2 * SLOT_SPREAD as usize;
/// Slots in a client's inbox: `data` of its down pipe, `space` of its up pipe.
pub const CLIENT_INBOX_SLOTS: usize = 2;
/// Messages a client's pipes buffer, for all its sessions together, before the writer waits
/// (both ends must use the same depth: it is part of the pipes' iceoryx2 service).
pub const PIPE_DEPTH: usize = 64;
/// The largest message a pipe carries. A pipe's shared memory grows to hold its depth (plus
/// two loans) of its largest message, rounded up to a power of two: 512 KiB makes that 33 MiB
/// per pipe at worst, so a pod's default 256 MiB `/dev/shm` holds seven pipes that all carry
/// the largest messages (a 4 MiB message would need 264 MiB for one pipe, more than the pod
/// has). 512 KiB is 2.7 s of 48 kHz mono audio; larger items are refused by name where they
/// are sent (the sender's input, or the node whose output it is).
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024;
/// Items of one session a sender may have in flight, not yet taken by its peer.
pub const SESSION_WINDOW: u32 = 16;
/// Credits are returned after this many items were taken (at most [`SESSION_WINDOW`], or a
/// blocked sender would wait forever for a batch that cannot fill).
pub const CREDIT_BATCH: u32 = 8;
/// Worker inbox slot rung when an Open arrives on the control pipe.
pub const CONTROL_SLOT: usize = 0;
/// Longest link name accepted (service names must stay within iceoryx2's limits).
pub const MAX_LINK_LEN: usize = 64;

/// Why a link name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkNameError {
    /// Empty, too long, or with a character outside `[A-Za-z0-9._-]`.
    #[error(
        "invalid link name {name:?} (from {source_of_name}): use 1 to {MAX_LINK_LEN} characters from A-Z, a-z, 0-9, '.', '_', '-'"
    )]
    Invalid {
        /// The rejected name.
        name: String,
        /// Where it came from: the flag, the environment variable.
        source_of_name: &'static str,
    },
}

/// A validated link name: what a worker serves under and clients connect to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinkName(String);

impl LinkName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`LinkNameError::Invalid`].
    pub fn new(name: &str) -> Result<Self, LinkNameError> {
        Self::checked(name, "--name/--connect or REMOTEMEDIA_IPC_NAME")
    }

    fn checked(name: &str, source_of_name: &'static str) -> Result<Self, LinkNameError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_LINK_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(LinkNameError::Invalid {
                name: name.to_owned(),
                source_of_name,
            })
        }
    }

    /// The name itself.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// iceoryx2 node name of the worker serving this link.
    #[must_use]
    pub fn worker_node(&self) -> String {
        format!("rm-worker.{}", self.0)
    }

    /// Event service of the worker's inbox.
    #[must_use]
    pub fn worker_inbox(&self) -> String {
        format!("remotemedia/{}/worker/inbox", self.0)
    }

    /// The pipe every client writes Open requests to.
    #[must_use]
    pub fn control_pipe(&self) -> String {
        format!("remotemedia/{}/control", self.0)
    }

    /// iceoryx2 node name of a client process.
    #[must_use]
    pub fn client_node(&self, client: u32) -> String {
        format!("{}{client:08x}", self.client_node_prefix())
    }

    /// What every client node name on this link starts with.
    #[must_use]
    pub fn client_node_prefix(&self) -> String {
        format!("rm-client.{}.", self.0)
    }

    /// The client id in a client node name of this link, if it is one.
    #[must_use]
    pub fn client_of_node(&self, node_name: &str) -> Option<u32> {
        let hex = node_name.strip_prefix(&self.client_node_prefix())?;
        (hex.len() == 8)
            .then(|| u32::from_str_radix(hex, 16).ok())
            .flatten()
    }

    /// Event service of a client's inbox.
    #[must_use]
    pub fn client_inbox(&self, client: u32) -> String {
        format!("remotemedia/{}/client/{client:08x}/inbox", self.0)
    }

    /// Client → worker pipe of a client process's sessions with worker node `worker`.
    #[must_use]
    pub fn up_pipe(&self, worker: u128, client: u32) -> String {
        format!("remotemedia/{}/w/{worker:032x}/c/{client:08x}/up", self.0)
    }

    /// Worker → client pipe of a client process's sessions with worker node `worker`.
    #[must_use]
    pub fn down_pipe(&self, worker: u128, client: u32) -> String {
        format!("remotemedia/{}/w/{worker:032x}/c/{client:08x}/down", self.0)
    }
}

impl fmt::Display for LinkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session on a link: client id and the client's counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl SessionId {
    /// The `counter`-th session of `client`.
    #[must_use]
    pub fn new(client: u32, counter: u32) -> Self {
        Self((u64::from(client) << 32) | u64::from(counter))
    }

    /// The client process that opened it.
    #[must_use]
    pub fn client(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// Worker inbox slots of `client`'s pipes: `data` of its up pipe, `space` of its down pipe.
#[must_use]
pub fn worker_slots(client: u32) -> PipeSlots {
    let base = 1 + 2 * (client % SLOT_SPREAD) as usize;
    PipeSlots {
        data: base,
        space: base + 1,
    }
}

/// Client inbox slots: `data` of its down pipe, `space` of its up pipe.
#[must_use]
pub fn client_slots() -> PipeSlots {
    PipeSlots { data: 0, space: 1 }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The two slots one end of a client's pipes is woken on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeSlots {
    /// Rung when a message arrives for this end.
    pub data: usize,
    /// Rung when the peer consumed a message this end sent.
    pub space: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_are_checked_and_say_where_they_came_from() {
        assert!(LinkName::new("pipeline-a.v2_x").is_ok());
        for bad in ["", "a/b", "a b", &"x".repeat(MAX_LINK_LEN + 1), "ü"] {
            let err = LinkName::new(bad).unwrap_err();
            assert!(err.to_string().contains("REMOTEMEDIA_IPC_NAME"), "{err}");
        }
        let err = LinkName::new("no/slash").unwrap_err();
        assert!(err.to_string().contains("--name"), "{err}");
        assert_eq!(LinkName::new("given").unwrap().as_str(), "given");
    }

    #[test]
    fn session_ids_carry_their_client() {
        let id = SessionId::new(0xdead_beef, 7);
        assert_eq!(id.client(), 0xdead_beef);
        assert_eq!(id.to_string(), "deadbeef00000007");
        let link = LinkName::new("l").unwrap();
        assert_eq!(
            link.up_pipe(0xab, id.client()),
            "remotemedia/l/w/000000000000000000000000000000ab/c/deadbeef/up"
        );
        let node = link.client_node(0xdead_beef);
        assert_eq!(link.client_of_node(&node), Some(0xdead_beef));
        assert_eq!(link.client_of_node("rm-client.other.deadbeef"), None);
        assert_eq!(link.client_of_node("rm-client.l.dead"), None);
    }

    #[test]
    fn slots_stay_in_range_and_never_use_the_control_slot() {
        for client in [0, 1, SLOT_SPREAD - 1, SLOT_SPREAD, u32::MAX] {
            let w = worker_slots(client);
            assert!(
                w.data > CONTROL_SLOT && w.space < WORKER_INBOX_SLOTS,
                "{w:?}"
            );
            assert_ne!(w.data, w.space);
        }
        let c = client_slots();
        assert!(c.data < CLIENT_INBOX_SLOTS && c.space < CLIENT_INBOX_SLOTS);
        assert_eq!(
            worker_slots(3),
            worker_slots(3 + SLOT_SPREAD),
            "client ids equal modulo the spread share slots"
        );
        const { assert!(CREDIT_BATCH <= SESSION_WINDOW) };
    }

    #[test]
    fn the_pod_contracts_shared_memory_figures_follow_the_link() {
        let pipe = |depth: usize| 2 * (depth + 2) * MAX_MESSAGE_BYTES;
        assert_eq!(
            crate::pod::TRANSPORT_LINK_SHM_BYTES,
            pipe(PIPE_DEPTH) as u64
        );
        let python_depth = crate::python::PythonOptions::default().depth;
        assert_eq!(crate::pod::PYTHON_NODE_SHM_BYTES, pipe(python_depth) as u64);
    }
}
