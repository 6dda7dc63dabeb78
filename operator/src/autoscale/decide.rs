//! The autoscaler's decisions, apart from IO: how many pods a Pipeline's open sessions want,
//! when fewer may go, and which pods go first.
//!
//! Up is immediate: as soon as the sessions counted want more pods than there are. Down waits:
//! fewer pods must have been wanted for the whole delay, and then the most wanted during it
//! is what stays (a dip in the middle of a busy minute removes nothing). A pod that did not
//! answer counts as holding `target` sessions when going down (it may be busy) and as idle
//! when going up (it is starting).

use std::time::{Duration, Instant};

use crate::crd::Autoscaling;

/// The Pipeline's `spec.autoscaling`, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Fewest pods.
    pub min: i32,
    /// Most pods.
    pub max: i32,
    /// Sessions a pod should hold.
    pub target: u32,
    /// How long fewer pods must be wanted before any go.
    pub scale_down_delay: Duration,
}

impl Policy {
    /// From the spec; the apiserver has checked its ranges.
    #[must_use]
    pub fn from_spec(spec: &Autoscaling) -> Self {
        let min = spec.min_replicas.max(1);
        Self {
            min,
            max: spec.max_replicas.max(min),
            target: u32::try_from(spec.target_sessions_per_pod)
                .unwrap_or(1)
                .max(1),
            scale_down_delay: Duration::from_secs(
                u64::try_from(spec.scale_down_delay_seconds).unwrap_or(0),
            ),
        }
    }

    /// Pods wanted for `sessions` open sessions.
    #[must_use]
    pub fn wanted(&self, sessions: u64) -> i32 {
        let pods = sessions.div_ceil(u64::from(self.target));
        i32::try_from(pods)
            .unwrap_or(i32::MAX)
            .clamp(self.min, self.max)
    }
}

/// What the autoscaler remembers of one Pipeline between looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Since when fewer pods than there are have been wanted, and the most wanted since.
    lower: Option<(Instant, i32)>,
}

/// One look at a Pipeline.
#[derive(Clone, Copy, Debug)]
pub struct Look<'a> {
    /// Replicas wanted now (`spec.replicas`).
    pub replicas: i32,
    /// Open sessions of each worker pod; `None` for a pod that did not answer.
    pub sessions: &'a [Option<u32>],
    /// When the counts were taken.
    pub now: Instant,
}

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing.
    Keep,
    /// Set the replicas.
    Scale {
        /// From.
        from: i32,
        /// To.
        to: i32,
        /// Why.
        reason: Reason,
    },
}

/// Why the replicas change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// More sessions than the pods should hold.
    Up {
        /// Sessions counted.
        sessions: u64,
    },
    /// Fewer, for the whole delay.
    Down {
        /// Sessions counted (pods that did not answer as `target` each).
        sessions: u64,
    },
    /// The replicas were outside `minReplicas..=maxReplicas`.
    Bounds,
}

impl Reason {
    /// The Event's reason. Distinct per kind of change: kube's recorder folds Events with the
    /// same reason on the same object into one series, keeping the first note only.
    #[must_use]
    pub fn event_reason(self) -> &'static str {
        match self {
            Self::Up { .. } => "ScaledUp",
            Self::Down { .. } => "ScaledDown",
            Self::Bounds => "ScaledIntoBounds",
        }
    }
}

impl Decision {
    /// The Event's note for a change: what changed and why.
    #[must_use]
    pub fn note(&self, policy: &Policy) -> Option<String> {
        let Self::Scale { from, to, reason } = *self else {
            return None;
        };
        let target = policy.target;
        Some(match reason {
            Reason::Up { sessions } => format!(
                "scaled up from {from} to {to} pods: {sessions} open sessions, target {target} per pod"
            ),
            Reason::Down { sessions } => format!(
                "scaled down from {from} to {to} pods: at most {sessions} open sessions for {}s, \
                 target {target} per pod; idle pods go first",
                policy.scale_down_delay.as_secs()
            ),
            Reason::Bounds => format!(
                "scaled from {from} to {to} pods: replicas must be within {}..={}",
                policy.min, policy.max
            ),
        })
    }
}

/// The decision for one look, remembering what the next look needs.
#[must_use]
pub fn decide(policy: &Policy, memory: &mut Memory, look: Look<'_>) -> Decision {
    let current = look.replicas;
    let bounded = current.clamp(policy.min, policy.max);
    if bounded != current {
        *memory = Memory::default();
        return Decision::Scale {
            from: current,
            to: bounded,
            reason: Reason::Bounds,
        };
    }
    let known: u64 = look.sessions.iter().flatten().map(|&s| u64::from(s)).sum();
    let silent = look.sessions.iter().filter(|s| s.is_none()).count() as u64;
    let up = policy.wanted(known);
    if up > current {
        *memory = Memory::default();
        return Decision::Scale {
            from: current,
            to: up,
            reason: Reason::Up { sessions: known },
        };
    }
    let at_most = known + silent * u64::from(policy.target);
    let down = policy.wanted(at_most);
    if down >= current {
        *memory = Memory::default();
        return Decision::Keep;
    }
    let (since, peak) = match memory.lower {
        Some((since, peak)) => (since, peak.max(down)),
        None => (look.now, down),
    };
    if look.now.duration_since(since) < policy.scale_down_delay {
        memory.lower = Some((since, peak));
        return Decision::Keep;
    }
    *memory = Memory::default();
    Decision::Scale {
        from: current,
        to: peak,
        reason: Reason::Down { sessions: at_most },
    }
}

/// The `controller.kubernetes.io/pod-deletion-cost` of a pod holding `sessions`: its session
/// count, so a ReplicaSet scaling in removes the idlest pods first.
#[must_use]
pub fn deletion_cost(sessions: u32) -> i32 {
    i32::try_from(sessions).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(delay: u64) -> Policy {
        Policy {
            min: 1,
            max: 3,
            target: 2,
            scale_down_delay: Duration::from_secs(delay),
        }
    }

    fn look(replicas: i32, sessions: &[Option<u32>], now: Instant) -> Look<'_> {
        Look {
            replicas,
            sessions,
            now,
        }
    }

    #[test]
    fn up_at_once_to_what_the_sessions_want_within_the_bounds() {
        let p = policy(60);
        let mut m = Memory::default();
        let t = Instant::now();
        assert_eq!(decide(&p, &mut m, look(1, &[Some(2)], t)), Decision::Keep);
        assert_eq!(
            decide(&p, &mut m, look(1, &[Some(3)], t)),
            Decision::Scale {
                from: 1,
                to: 2,
                reason: Reason::Up { sessions: 3 }
            }
        );
        // 5 sessions on one pod (the others starting): 3 pods, and no more than max.
        assert_eq!(
            decide(&p, &mut m, look(2, &[Some(5), None], t)),
            Decision::Scale {
                from: 2,
                to: 3,
                reason: Reason::Up { sessions: 5 }
            }
        );
        assert_eq!(
            decide(&p, &mut m, look(3, &[Some(40), None, None], t)),
            Decision::Keep
        );
    }

    #[test]
    fn down_only_after_the_delay_to_the_most_wanted_during_it() {
        let p = policy(60);
        let mut m = Memory::default();
        let t = Instant::now();
        let s = Duration::from_secs;
        // 3 pods, sessions fall to 1: nothing before 60 s.
        assert_eq!(
            decide(&p, &mut m, look(3, &[Some(1), Some(0), Some(0)], t)),
            Decision::Keep
        );
        // A rise to 3 sessions (2 pods wanted) in the middle is remembered.
        assert_eq!(
            decide(&p, &mut m, look(3, &[Some(1), Some(2), Some(0)], t + s(30))),
            Decision::Keep
        );
        assert_eq!(
            decide(&p, &mut m, look(3, &[Some(1), Some(0), Some(0)], t + s(59))),
            Decision::Keep
        );
        assert_eq!(
            decide(&p, &mut m, look(3, &[Some(1), Some(0), Some(0)], t + s(60))),
            Decision::Scale {
                from: 3,
                to: 2,
                reason: Reason::Down { sessions: 1 }
            }
        );
        // The next step down waits a whole delay again.
        assert_eq!(
            decide(&p, &mut m, look(2, &[Some(1), Some(0)], t + s(61))),
            Decision::Keep
        );
        assert_eq!(
            decide(&p, &mut m, look(2, &[Some(1), Some(0)], t + s(121))),
            Decision::Scale {
                from: 2,
                to: 1,
                reason: Reason::Down { sessions: 1 }
            }
        );
    }

    #[test]
    fn wanting_as_many_as_there_are_restarts_the_delay() {
        let p = policy(60);
        let mut m = Memory::default();
        let t = Instant::now();
        let s = Duration::from_secs;
        let _ = decide(&p, &mut m, look(2, &[Some(0), Some(0)], t));
        assert_eq!(
            decide(&p, &mut m, look(2, &[Some(2), Some(1)], t + s(40))),
            Decision::Keep
        );
        // Quiet again: the 60 s start over from here.
        assert_eq!(
            decide(&p, &mut m, look(2, &[Some(0), Some(0)], t + s(50))),
            Decision::Keep
        );
        assert_eq!(
            decide(&p, &mut m, look(2, &[Some(0), Some(0)], t + s(100))),
            Decision::Keep
        );
        assert!(matches!(
            decide(&p, &mut m, look(2, &[Some(0), Some(0)], t + s(110))),
            Decision::Scale { to: 1, .. }
        ));
    }

    #[test]
    fn a_pod_that_does_not_answer_may_be_busy_so_it_holds_a_scale_down() {
        let p = policy(0);
        let mut m = Memory::default();
        let t = Instant::now();
        // 3 pods, 1 session counted, one pod silent: at most 3 sessions, 2 pods stay.
        assert_eq!(
            decide(&p, &mut m, look(3, &[Some(1), None, Some(0)], t)),
            Decision::Scale {
                from: 3,
                to: 2,
                reason: Reason::Down { sessions: 3 }
            }
        );
    }

    #[test]
    fn replicas_outside_the_bounds_are_brought_in_at_once() {
        let p = policy(600);
        let mut m = Memory::default();
        let t = Instant::now();
        assert_eq!(
            decide(&p, &mut m, look(7, &[Some(0); 7], t)),
            Decision::Scale {
                from: 7,
                to: 3,
                reason: Reason::Bounds
            }
        );
        let note = decide(&p, &mut m, look(0, &[], t)).note(&p).unwrap();
        assert_eq!(
            note,
            "scaled from 0 to 1 pods: replicas must be within 1..=3"
        );
    }

    #[test]
    fn notes_say_what_changed_and_why() {
        let p = policy(300);
        let up = Decision::Scale {
            from: 1,
            to: 3,
            reason: Reason::Up { sessions: 5 },
        };
        assert_eq!(
            up.note(&p).unwrap(),
            "scaled up from 1 to 3 pods: 5 open sessions, target 2 per pod"
        );
        assert_eq!(Decision::Keep.note(&p), None);
        assert_eq!(deletion_cost(7), 7);
        assert_eq!(deletion_cost(u32::MAX), i32::MAX);
    }
}
