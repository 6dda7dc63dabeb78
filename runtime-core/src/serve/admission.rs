//! How many sessions a server holds, its limit, and how it stops: refuse new sessions, let
//! the open ones end, keep the port open for the linger ([`drain`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Sessions open on a server, its limit, and whether it is draining. Clones share the count.
#[derive(Clone, Debug)]
pub struct Admission {
    /// Sessions open now; a watch so [`Admission::idle`] can wait for zero without polling.
    count: Arc<watch::Sender<usize>>,
    /// Turns true once, on [`Admission::refuse_new`]; a watch so it can be awaited.
    draining: Arc<watch::Sender<bool>>,
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            count: Arc::new(watch::Sender::new(0)),
            draining: Arc::new(watch::Sender::new(false)),
        }
    }
}

/// Why a session was not admitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The server is shutting down ([`Admission::refuse_new`]).
    #[error("the server is shutting down; open the session elsewhere")]
    Draining,
    /// The server holds its maximum of sessions.
    #[error("the server holds its maximum of {max} sessions")]
    Full {
        /// The limit.
        max: usize,
    },
}

impl Admission {
    /// Sessions open now.
    #[must_use]
    pub fn open(&self) -> usize {
        *self.count.borrow()
    }

    /// True once [`Admission::refuse_new`] was called.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// From now on, new sessions are refused; open ones go on.
    pub fn refuse_new(&self) {
        self.draining.send_replace(true);
    }

    /// Resolves once the server starts draining (at once if it has).
    pub async fn draining(&self) {
        let mut draining = self.draining.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = draining.wait_for(|&yes| yes).await;
    }

    /// Takes a place for one session if fewer than `max` are open and the server is not
    /// draining; the place is freed when the slot is dropped.
    ///
    /// # Errors
    ///
    /// [`AdmitError::Draining`] or [`AdmitError::Full`].
    pub fn admit(&self, max: usize) -> Result<SessionSlot, AdmitError> {
        if self.is_draining() {
            return Err(AdmitError::Draining);
        }
        let admitted = self.count.send_if_modified(|n| {
            let room = *n < max;
            if room {
                *n += 1;
            }
            room
        });
        if admitted {
            Ok(SessionSlot(self.count.clone()))
        } else {
            Err(AdmitError::Full { max })
        }
    }

    /// Resolves the next time the number of open sessions changes.
    pub async fn changed(&self) {
        let mut count = self.count.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = count.changed().await;
    }

    /// Resolves once no session is open (at once when none is).
    pub async fn idle(&self) {
        let mut count = self.count.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = count.wait_for(|&open| open == 0).await;
    }
}

/// One admitted session's place; freed when dropped, however the session ended.
#[derive(Debug)]
pub struct SessionSlot(Arc<watch::Sender<usize>>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// How a server stops once asked to (SIGTERM): the flags `--drain-seconds` and
/// `--linger-seconds` of every server binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainPolicy {
    /// Open sessions get this long to end; those still open then are cut.
    pub deadline: Duration,
    /// The port stays open at least this long, answering new sessions with a retryable
    /// refusal (gRPC `UNAVAILABLE`, WHIP `503` + `Retry-After`): a terminating pod's endpoint
    /// takes a moment to leave every kube-proxy and load balancer, and a closed port would
    /// turn the connections still routed here into errors clients do not retry.
    pub linger: Duration,
}

impl DrainPolicy {
    /// The policy of `--drain-seconds` and `--linger-seconds`.
    #[must_use]
    pub const fn from_secs(deadline: u64, linger: u64) -> Self {
        Self {
            deadline: Duration::from_secs(deadline),
            linger: Duration::from_secs(linger),
        }
    }
}

/// Refuses new sessions from now on, then resolves once the last open session has ended and
/// `policy.linger` has passed, or at the latest at `policy.deadline` (or the linger, if
/// longer). Returns how many sessions were still open, to be cut.
pub async fn drain(admission: &Admission, policy: DrainPolicy) -> usize {
    admission.refuse_new();
    let settled = async {
        tokio::join!(admission.idle(), tokio::time::sleep(policy.linger));
    };
    let _ = tokio::time::timeout(policy.deadline.max(policy.linger), settled).await;
    admission.open()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    const POLICY: DrainPolicy = DrainPolicy {
        deadline: Duration::from_secs(30),
        linger: Duration::from_secs(5),
    };

    #[test]
    fn admits_up_to_the_limit_and_frees_places_on_drop() {
        let admission = Admission::default();
        let a = admission.admit(2).expect("first");
        let _b = admission.admit(2).expect("second");
        assert_eq!(admission.admit(2).unwrap_err(), AdmitError::Full { max: 2 });
        drop(a);
        assert_eq!(admission.open(), 1);
        assert!(admission.admit(2).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn with_nothing_open_the_drain_still_lingers_and_refuses() {
        let admission = Admission::default();
        let start = Instant::now();
        let draining = tokio::spawn({
            let admission = admission.clone();
            async move { drain(&admission, POLICY).await }
        });
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(admission.admit(10).unwrap_err(), AdmitError::Draining);
        assert!(
            !draining.is_finished(),
            "the port must stay open for the linger"
        );
        assert_eq!(draining.await.unwrap(), 0);
        assert_eq!(start.elapsed(), POLICY.linger);
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_ends_when_the_last_session_does() {
        let admission = Admission::default();
        let slot = admission.admit(10).expect("admitted");
        let start = Instant::now();
        let draining = tokio::spawn({
            let admission = admission.clone();
            async move { drain(&admission, POLICY).await }
        });
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert!(!draining.is_finished(), "a session is still open");
        drop(slot);
        assert_eq!(draining.await.unwrap(), 0);
        assert_eq!(start.elapsed(), Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_open_at_the_deadline_are_counted_as_cut() {
        let admission = Admission::default();
        let _slot = admission.admit(10).expect("admitted");
        let start = Instant::now();
        assert_eq!(drain(&admission, POLICY).await, 1);
        assert_eq!(start.elapsed(), POLICY.deadline);
        // A linger longer than the deadline still holds the port open.
        let start = Instant::now();
        let long_linger = DrainPolicy {
            deadline: Duration::from_secs(1),
            linger: Duration::from_secs(3),
        };
        assert_eq!(drain(&admission, long_linger).await, 1);
        assert_eq!(start.elapsed(), long_linger.linger);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_zero_without_a_poll() {
        let admission = Admission::default();
        admission.idle().await; // nothing open: at once
        let slot = admission.admit(1).expect("admitted");
        let idle = tokio::spawn({
            let admission = admission.clone();
            async move { admission.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!idle.is_finished());
        drop(slot);
        idle.await.unwrap();
    }
}
