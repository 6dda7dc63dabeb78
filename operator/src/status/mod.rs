//! Status computation: what a Pipeline's status should say given what was observed. Pure, so
//! every combination is unit-tested without a cluster.
//!
//! Conditions:
//! - `ManifestValid`: runtime-core's validator accepts `spec.manifest`, against the node types
//!   of the image the Pipeline runs; `Unknown` while that image's catalog is being read or
//!   cannot be read.
//! - `Progressing`: the Deployment is rolling out the current spec.
//! - `Ready`: the current spec is fully rolled out and every wanted replica is available.
//!   (Not merely "some pods answer": KServe #4626 reported Ready during rollouts.)
//! - `Degraded`: something needs a human: an invalid manifest (the last valid one keeps
//!   running), a stuck rollout, pods that do not become available.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{Endpoints, PipelineStatus};
use crate::desired::MANIFEST_HASH_KEY;

/// Condition type names.
pub mod types {
    /// The manifest passed validation.
    pub const MANIFEST_VALID: &str = "ManifestValid";
    /// A rollout of the current spec is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// Fully rolled out and available.
    pub const READY: &str = "Ready";
    /// Needs attention.
    pub const DEGRADED: &str = "Degraded";
}

/// What checking the manifest found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestCheck {
    /// Valid against the image's node types.
    Valid,
    /// Invalid: a summary of the problems.
    Invalid(String),
    /// Not checked yet: the image's node catalog is being read (a few seconds).
    CatalogPending(String),
    /// Cannot be checked: the image's node catalog cannot be read (why).
    CatalogUnavailable(String),
}

impl ManifestCheck {
    /// Whether the manifest may be deployed.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid)
    }

    /// Why it may not be deployed (`None` when valid), and whether that needs a human.
    fn problem(&self) -> Option<(&'static str, &str, bool)> {
        match self {
            Self::Valid => None,
            Self::Invalid(why) => Some(("InvalidManifest", why, true)),
            Self::CatalogPending(why) => Some(("CatalogPending", why, false)),
            Self::CatalogUnavailable(why) => Some(("CatalogUnavailable", why, true)),
        }
    }
}

/// Everything status is computed from.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// `metadata.generation` of the Pipeline.
    pub generation: Option<i64>,
    /// Whether the manifest is valid against the image's node types.
    pub manifest: ManifestCheck,
    /// The worker Deployment as last read or applied.
    pub deployment: Option<&'a Deployment>,
    /// `spec.replicas` of the Pipeline.
    pub desired_replicas: i32,
    /// Addresses of the enabled transports.
    pub endpoints: Endpoints,
    /// The pods' label selector.
    pub selector: String,
}

/// A condition whose status changed, for an Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Condition type.
    pub type_: String,
    /// New status (`True`/`False`).
    pub status: String,
    /// New reason.
    pub reason: String,
    /// New message.
    pub message: String,
    /// Whether this deserves a Warning event rather than a Normal one.
    pub warning: bool,
}

struct Verdict {
    status: &'static str,
    reason: &'static str,
    message: String,
}

fn verdict(status: bool, reason: &'static str, message: impl Into<String>) -> Verdict {
    Verdict {
        status: if status { "True" } else { "False" },
        reason,
        message: message.into(),
    }
}

fn unknown(reason: &'static str, message: impl Into<String>) -> Verdict {
    Verdict {
        status: "Unknown",
        reason,
        message: message.into(),
    }
}

/// The Deployment's rollout state, reduced to what the conditions need.
struct Rollout {
    observed_current: bool,
    updated: i32,
    available: i32,
    ready: i32,
    total: i32,
    deadline_exceeded: bool,
    replica_failure: Option<String>,
    hash: Option<String>,
}

fn rollout(deployment: &Deployment) -> Rollout {
    let status = deployment.status.clone().unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let generation = deployment.metadata.generation;
    Rollout {
        observed_current: generation.is_some() && status.observed_generation >= generation,
        updated: status.updated_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
        ready: status.ready_replicas.unwrap_or(0),
        total: status.replicas.unwrap_or(0),
        deadline_exceeded: conditions.iter().any(|c| {
            c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        }),
        replica_failure: conditions
            .iter()
            .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
            .map(|c| c.message.clone().unwrap_or_default()),
        hash: deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(MANIFEST_HASH_KEY))
            .cloned(),
    }
}

/// Computes the new status. `previous` keeps `lastTransitionTime` of conditions whose status
/// did not change, so an unchanged world yields an identical status (no write, no event).
#[must_use]
pub fn compute(
    previous: Option<&PipelineStatus>,
    observed: &Observed<'_>,
    now: &Time,
) -> PipelineStatus {
    let rollout = observed.deployment.map(rollout);
    let (progressing, ready) = progress(observed, rollout.as_ref());
    let conditions = [
        (types::MANIFEST_VALID, manifest_valid(observed)),
        (types::PROGRESSING, progressing),
        (types::READY, ready),
        (
            types::DEGRADED,
            degraded(previous, observed, rollout.as_ref()),
        ),
    ]
    .into_iter()
    .map(|(type_, v)| condition(previous, type_, v, observed.generation, now))
    .collect();

    PipelineStatus {
        observed_generation: observed.generation,
        conditions,
        replicas: rollout.as_ref().map_or(0, |r| r.total),
        ready_replicas: rollout.as_ref().map_or(0, |r| r.ready),
        selector: Some(observed.selector.clone()),
        endpoints: Some(observed.endpoints.clone()),
        manifest_hash: rollout.and_then(|r| r.hash),
        // The autoscaler's to write (its own field manager); kept so a comparison with the
        // previous status sees no change here.
        sessions: previous.and_then(|p| p.sessions.clone()),
    }
}

/// ManifestValid: whether the manifest passed validation, naming the errors if not; Unknown
/// while the image's node types are not known.
fn manifest_valid(observed: &Observed<'_>) -> Verdict {
    match &observed.manifest {
        ManifestCheck::Valid => verdict(true, "Valid", "the manifest passed validation"),
        ManifestCheck::Invalid(errors) => verdict(false, "InvalidManifest", errors.clone()),
        ManifestCheck::CatalogPending(why) => unknown("CatalogPending", why.clone()),
        ManifestCheck::CatalogUnavailable(why) => unknown("CatalogUnavailable", why.clone()),
    }
}

/// Progressing and Ready, from the worker Deployment's rollout.
fn progress(observed: &Observed<'_>, rollout: Option<&Rollout>) -> (Verdict, Verdict) {
    let desired = observed.desired_replicas;
    let Some(r) = rollout else {
        if let Some((reason, _, _)) = observed.manifest.problem() {
            let why = "nothing is deployed until the manifest is known to be valid";
            return (verdict(false, reason, why), verdict(false, reason, why));
        }
        return (
            verdict(true, "Creating", "creating the worker Deployment"),
            verdict(
                false,
                "Creating",
                "the worker Deployment does not exist yet",
            ),
        );
    };
    let counts = format!(
        "{} of {desired} updated, {} available, {} pods in total",
        r.updated, r.available, r.total
    );
    let rolled_out =
        r.observed_current && r.updated == desired && r.total == desired && r.available >= desired;
    let progressing = if r.deadline_exceeded {
        verdict(
            false,
            "ProgressDeadlineExceeded",
            format!("the rollout is stuck: {counts}"),
        )
    } else if rolled_out {
        verdict(false, "RolloutComplete", counts.clone())
    } else {
        verdict(true, "RollingOut", counts.clone())
    };
    let ready = if desired == 0 {
        verdict(false, "ScaledToZero", "spec.replicas is 0")
    } else if rolled_out {
        verdict(
            true,
            "Available",
            format!("{desired} of {desired} replicas available"),
        )
    } else {
        verdict(false, "RollingOut", counts)
    };
    (progressing, ready)
}

/// Degraded: an invalid manifest (with the last valid one still serving), a stuck rollout,
/// failing replicas, or pods that were all available and went away.
fn degraded(
    previous: Option<&PipelineStatus>,
    observed: &Observed<'_>,
    rollout: Option<&Rollout>,
) -> Verdict {
    let desired = observed.desired_replicas;
    match (observed.manifest.problem(), rollout) {
        // Reading a catalog takes seconds and needs no one: not Degraded.
        (Some((_, _, false)), _) => verdict(false, "AsExpected", "no problems observed"),
        (Some((reason, why, true)), Some(r)) => verdict(
            true,
            reason,
            format!(
                "still serving the last valid manifest ({}); {why}",
                r.hash
                    .as_deref()
                    .map_or("unknown", |h| &h[..h.len().min(12)])
            ),
        ),
        (Some((reason, why, true)), None) => verdict(true, reason, why),
        (None, Some(r)) if r.deadline_exceeded => verdict(
            true,
            "ProgressDeadlineExceeded",
            "the Deployment exceeded its progress deadline; see its pods' events",
        ),
        (None, Some(r)) if r.replica_failure.is_some() => verdict(
            true,
            "ReplicaFailure",
            r.replica_failure.clone().unwrap_or_default(),
        ),
        // Pods that were all available and then went away (crashing, evicted). A first
        // rollout whose pods are still starting is Progressing, not Degraded.
        (None, Some(r))
            if was_available(previous)
                && r.observed_current
                && r.updated == desired
                && r.ready < desired =>
        {
            verdict(
                true,
                "ReplicasUnavailable",
                format!("{} of {desired} replicas ready", r.ready),
            )
        }
        _ => verdict(false, "AsExpected", "no problems observed"),
    }
}

/// `previous` with Degraded=True, reason `ReconcileFailed`, naming `error`: a reconcile that
/// failed (refused by the API, quota, a full Service IP range) shows on the Pipeline, not only
/// in the operator's log. The other conditions stay as they were.
#[must_use]
pub fn with_failure(
    previous: Option<&PipelineStatus>,
    generation: Option<i64>,
    error: &str,
    now: &Time,
) -> PipelineStatus {
    let mut status = previous.cloned().unwrap_or_default();
    let degraded = condition(
        previous,
        types::DEGRADED,
        verdict(true, "ReconcileFailed", error),
        generation,
        now,
    );
    status.conditions.retain(|c| c.type_ != types::DEGRADED);
    status.conditions.push(degraded);
    status
}

fn was_available(previous: Option<&PipelineStatus>) -> bool {
    previous.is_some_and(|p| {
        p.conditions.iter().any(|c| {
            (c.type_ == types::READY && c.status == "True")
                || (c.type_ == types::DEGRADED && c.reason == "ReplicasUnavailable")
        })
    })
}

fn condition(
    previous: Option<&PipelineStatus>,
    type_: &str,
    v: Verdict,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let status = v.status.to_owned();
    let last_transition_time = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status,
        reason: v.reason.to_owned(),
        message: v.message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Conditions whose status differs between `previous` and `next` (all of them when there was
/// no previous status).
#[must_use]
pub fn transitions(previous: Option<&PipelineStatus>, next: &PipelineStatus) -> Vec<Transition> {
    next.conditions
        .iter()
        .filter(|c| {
            let before = previous.and_then(|p| p.conditions.iter().find(|o| o.type_ == c.type_));
            before.is_none_or(|b| b.status != c.status || b.reason != c.reason)
        })
        .filter(|c| {
            // A first "Progressing=False" or "Degraded=False" says nothing worth an event.
            previous.is_some() || c.status == "True" || c.type_ == types::MANIFEST_VALID
        })
        .map(|c| Transition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            warning: matches!(
                (c.type_.as_str(), c.status.as_str()),
                (types::MANIFEST_VALID, "False") | (types::DEGRADED, "True")
            ) || c.reason == "CatalogUnavailable",
        })
        .collect()
}

/// The status of condition `type_`, if present.
#[must_use]
pub fn condition_status<'a>(status: &'a PipelineStatus, type_: &str) -> Option<&'a str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

#[cfg(test)]
mod tests;
