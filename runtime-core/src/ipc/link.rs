//! Names and slot numbers on one link: pure functions, so both ends (and the Python package)
//! agree on them without talking first.
//!
//! ```text
//! worker node          rm-worker.<link>
//! worker inbox         remotemedia/<link>/worker/inbox     slot 0: control, 1..: sessions
//! control pipe         remotemedia/<link>/control          every client writes Open here
//! client node          rm-client.<link>.<client id, 8 hex digits>
//! client inbox         remotemedia/<link>/client/<client id>/inbox
//! session pipes        remotemedia/<link>/s/<session id, 16 hex digits>/{up,down}
//! ```
//!
//! A session id is the client id (random per client process) in its upper 32 bits and the
//! client's session counter in its lower 32, so the worker can tell which client process owns
//! a session (to reclaim it when that process dies) and ring that client's inbox.
//!
//! The worker cannot tell a client which of its slots to ring before they can talk, so both
//! ends derive slots from the session id. Sessions whose counters are equal modulo
//! [`SLOT_SPREAD`] share slots; a shared slot costs a spurious wake-up, never a lost one
//! (see [`super::pipe`]).

use std::fmt;

/// Link name used when neither the flag nor [`LINK_ENV`] names one.
pub const DEFAULT_LINK: &str = "remotemedia";
/// Environment variable naming the link.
pub const LINK_ENV: &str = "REMOTEMEDIA_IPC_NAME";
/// Distinct slot pairs per inbox.
pub const SLOT_SPREAD: u32 = 1024;
/// Slots in a worker's inbox: the control slot and a pair per spread.
pub const WORKER_INBOX_SLOTS: usize = 1 + 2 * SLOT_SPREAD as usize;
/// Slots in a client's inbox.
pub const CLIENT_INBOX_SLOTS: usize = 2 * SLOT_SPREAD as usize;
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
        Self::checked(name, "argument")
    }

    /// The flag's value if given, else [`LINK_ENV`] if set, else [`DEFAULT_LINK`].
    ///
    /// # Errors
    /// [`LinkNameError::Invalid`] naming where the bad name came from.
    pub fn resolve(flag: Option<&str>) -> Result<Self, LinkNameError> {
        if let Some(name) = flag {
            return Self::checked(name, "--name/--connect");
        }
        match std::env::var(LINK_ENV) {
            Ok(name) => Self::checked(&name, LINK_ENV),
            Err(_) => Ok(Self(DEFAULT_LINK.to_owned())),
        }
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

    /// Client → worker pipe of a session.
    #[must_use]
    pub fn up_pipe(&self, session: SessionId) -> String {
        format!("remotemedia/{}/s/{session}/up", self.0)
    }

    /// Worker → client pipe of a session.
    #[must_use]
    pub fn down_pipe(&self, session: SessionId) -> String {
        format!("remotemedia/{}/s/{session}/down", self.0)
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

    fn spread(self) -> usize {
        ((self.0 as u32) % SLOT_SPREAD) as usize
    }

    /// Worker inbox slots: `data` of the up pipe, `space` of the down pipe.
    #[must_use]
    pub fn worker_slots(self) -> SessionSlots {
        let base = 1 + 2 * self.spread();
        SessionSlots {
            data: base,
            space: base + 1,
        }
    }

    /// Client inbox slots: `data` of the down pipe, `space` of the up pipe.
    #[must_use]
    pub fn client_slots(self) -> SessionSlots {
        let base = 2 * self.spread();
        SessionSlots {
            data: base,
            space: base + 1,
        }
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The two slots one end of a session is woken on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSlots {
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
            assert!(err.to_string().contains("argument"), "{err}");
        }
        let err = LinkName::resolve(Some("no/slash")).unwrap_err();
        assert!(err.to_string().contains("--name"), "{err}");
        assert_eq!(
            LinkName::resolve(Some("given")).unwrap().as_str(),
            "given",
            "the flag wins over the environment"
        );
    }

    #[test]
    fn session_ids_carry_their_client() {
        let id = SessionId::new(0xdead_beef, 7);
        assert_eq!(id.client(), 0xdead_beef);
        assert_eq!(id.to_string(), "deadbeef00000007");
        let link = LinkName::new("l").unwrap();
        assert_eq!(link.up_pipe(id), "remotemedia/l/s/deadbeef00000007/up");
        let node = link.client_node(0xdead_beef);
        assert_eq!(link.client_of_node(&node), Some(0xdead_beef));
        assert_eq!(link.client_of_node("rm-client.other.deadbeef"), None);
        assert_eq!(link.client_of_node("rm-client.l.dead"), None);
    }

    #[test]
    fn slots_stay_in_range_and_never_use_the_control_slot() {
        for counter in [0, 1, SLOT_SPREAD - 1, SLOT_SPREAD, u32::MAX] {
            let id = SessionId::new(u32::MAX, counter);
            let w = id.worker_slots();
            assert!(
                w.data > CONTROL_SLOT && w.space < WORKER_INBOX_SLOTS,
                "{w:?}"
            );
            let c = id.client_slots();
            assert!(c.space < CLIENT_INBOX_SLOTS, "{c:?}");
            assert_ne!(w.data, w.space);
        }
        assert_eq!(
            SessionId::new(1, 3).worker_slots(),
            SessionId::new(2, 3 + SLOT_SPREAD).worker_slots(),
            "counters equal modulo the spread share slots"
        );
    }
}
