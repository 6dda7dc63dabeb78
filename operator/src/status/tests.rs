use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use super::*;

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).expect("valid time"))
}

/// A Deployment at generation 2 with the given counts (observed, updated, available, ready, total).
fn deployment(observed: i64, updated: i32, available: i32, ready: i32, total: i32) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            generation: Some(2),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    annotations: Some(
                        [(MANIFEST_HASH_KEY.to_owned(), "abcdef0123456789".to_owned())].into(),
                    ),
                    ..ObjectMeta::default()
                }),
                spec: None,
            },
            ..DeploymentSpec::default()
        }),
        status: Some(DeploymentStatus {
            observed_generation: Some(observed),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            ready_replicas: Some(ready),
            replicas: Some(total),
            ..DeploymentStatus::default()
        }),
    }
}

fn observed<'a>(
    deployment: Option<&'a Deployment>,
    errors: Option<&str>,
    desired: i32,
) -> Observed<'a> {
    Observed {
        generation: Some(7),
        manifest: errors.map_or(ManifestCheck::Valid, |e| {
            ManifestCheck::Invalid(e.to_owned())
        }),
        deployment,
        desired_replicas: desired,
        endpoints: Endpoints {
            grpc: Some("p-grpc.ns.svc:50051".to_owned()),
            webrtc: None,
            ice_servers: Vec::new(),
        },
        selector: "remotemedia.dev/pipeline=p".to_owned(),
    }
}

fn get<'a>(status: &'a PipelineStatus, type_: &str) -> &'a Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .expect("condition present")
}

#[test]
fn a_fully_rolled_out_deployment_is_ready() {
    let d = deployment(2, 2, 2, 2, 2);
    let s = compute(None, &observed(Some(&d), None, 2), &at(100));
    assert_eq!(get(&s, types::READY).status, "True");
    assert_eq!(get(&s, types::PROGRESSING).status, "False");
    assert_eq!(get(&s, types::DEGRADED).status, "False");
    assert_eq!(get(&s, types::MANIFEST_VALID).status, "True");
    assert_eq!((s.replicas, s.ready_replicas), (2, 2));
    assert_eq!(s.observed_generation, Some(7));
    assert!(
        s.conditions
            .iter()
            .all(|c| c.observed_generation == Some(7))
    );
    assert_eq!(s.manifest_hash.as_deref(), Some("abcdef0123456789"));
    assert_eq!(s.selector.as_deref(), Some("remotemedia.dev/pipeline=p"));
}

#[test]
fn a_rollout_in_progress_is_progressing_and_not_ready() {
    // The Deployment controller has not seen generation 2 yet.
    let d = deployment(1, 2, 2, 2, 2);
    let s = compute(None, &observed(Some(&d), None, 2), &at(100));
    assert_eq!(get(&s, types::PROGRESSING).status, "True");
    assert_eq!(get(&s, types::READY).status, "False");
    // Old pods still running beside the new ones (surge).
    let d = deployment(2, 2, 2, 2, 3);
    let s = compute(None, &observed(Some(&d), None, 2), &at(100));
    assert_eq!(get(&s, types::READY).reason, "RollingOut");
    assert_eq!(
        get(&s, types::DEGRADED).status,
        "False",
        "starting pods are not a degradation"
    );
}

#[test]
fn no_deployment_yet_means_creating() {
    let s = compute(None, &observed(None, None, 1), &at(100));
    assert_eq!(get(&s, types::PROGRESSING).reason, "Creating");
    assert_eq!(get(&s, types::READY).status, "False");
}

#[test]
fn an_invalid_manifest_keeps_the_last_good_version_and_says_so() {
    let d = deployment(2, 1, 1, 1, 1);
    let errors = "1 error in the manifest: spec.manifest.nodes[0].node_type (node 'x'): unknown";
    let s = compute(None, &observed(Some(&d), Some(errors), 1), &at(100));
    let valid = get(&s, types::MANIFEST_VALID);
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("False", "InvalidManifest")
    );
    assert!(valid.message.contains("node 'x'"));
    assert_eq!(
        get(&s, types::READY).status,
        "True",
        "the last valid manifest still serves"
    );
    let degraded = get(&s, types::DEGRADED);
    assert_eq!(degraded.status, "True");
    assert!(
        degraded
            .message
            .contains("last valid manifest (abcdef012345)"),
        "{}",
        degraded.message
    );

    let s = compute(None, &observed(None, Some(errors), 1), &at(100));
    assert_eq!(get(&s, types::READY).reason, "InvalidManifest");
    assert_eq!(get(&s, types::PROGRESSING).status, "False");
}

#[test]
fn a_stuck_rollout_is_degraded() {
    let mut d = deployment(2, 1, 0, 0, 1);
    d.status.as_mut().expect("status").conditions = Some(vec![DeploymentCondition {
        type_: "Progressing".to_owned(),
        status: "False".to_owned(),
        reason: Some("ProgressDeadlineExceeded".to_owned()),
        ..DeploymentCondition::default()
    }]);
    let s = compute(None, &observed(Some(&d), None, 1), &at(100));
    assert_eq!(get(&s, types::DEGRADED).reason, "ProgressDeadlineExceeded");
    assert_eq!(get(&s, types::PROGRESSING).status, "False");
}

#[test]
fn pods_lost_after_being_available_degrade_the_pipeline() {
    let healthy = deployment(2, 2, 2, 2, 2);
    let before = compute(None, &observed(Some(&healthy), None, 2), &at(100));
    let crashing = deployment(2, 2, 1, 1, 2);
    let after = compute(Some(&before), &observed(Some(&crashing), None, 2), &at(200));
    assert_eq!(get(&after, types::DEGRADED).reason, "ReplicasUnavailable");
    assert_eq!(get(&after, types::READY).status, "False");
}

#[test]
fn transition_times_change_only_with_status() {
    let d = deployment(2, 1, 1, 1, 1);
    let first = compute(None, &observed(Some(&d), None, 1), &at(100));
    let again = compute(Some(&first), &observed(Some(&d), None, 1), &at(500));
    assert_eq!(again, first, "an unchanged world gives an identical status");
    assert!(transitions(Some(&first), &again).is_empty());

    let broken = compute(
        Some(&first),
        &observed(Some(&d), Some("1 error"), 1),
        &at(900),
    );
    assert_eq!(
        get(&broken, types::MANIFEST_VALID).last_transition_time,
        at(900)
    );
    assert_eq!(get(&broken, types::READY).last_transition_time, at(100));
    let events = transitions(Some(&first), &broken);
    let kinds: Vec<_> = events
        .iter()
        .map(|t| (t.type_.as_str(), t.warning))
        .collect();
    assert_eq!(
        kinds,
        [(types::MANIFEST_VALID, true), (types::DEGRADED, true)]
    );
}

#[test]
fn first_status_reports_only_meaningful_events() {
    let d = deployment(2, 1, 1, 1, 1);
    let s = compute(None, &observed(Some(&d), None, 1), &at(100));
    let types: Vec<_> = transitions(None, &s).into_iter().map(|t| t.type_).collect();
    assert_eq!(types, [types::MANIFEST_VALID, types::READY]);
}

#[test]
fn scaled_to_zero_is_not_ready_but_not_degraded() {
    let d = deployment(2, 0, 0, 0, 0);
    let s = compute(None, &observed(Some(&d), None, 0), &at(100));
    assert_eq!(get(&s, types::READY).reason, "ScaledToZero");
    assert_eq!(get(&s, types::DEGRADED).status, "False");
}

#[test]
fn a_failed_reconcile_degrades_and_keeps_the_rest() {
    let d = deployment(2, 1, 1, 1, 1);
    let before = compute(None, &observed(Some(&d), None, 1), &at(100));
    let failed = with_failure(
        Some(&before),
        Some(8),
        "apply Service: range is full",
        &at(200),
    );
    let degraded = get(&failed, types::DEGRADED);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "ReconcileFailed")
    );
    assert!(degraded.message.contains("range is full"));
    assert_eq!(degraded.last_transition_time, at(200));
    assert_eq!(get(&failed, types::READY), get(&before, types::READY));
    assert_eq!(failed.conditions.len(), before.conditions.len());
    let again = with_failure(
        Some(&failed),
        Some(8),
        "apply Service: range is full",
        &at(300),
    );
    assert_eq!(again, failed, "a repeated failure rewrites nothing");
}

#[test]
fn a_catalog_being_read_is_unknown_and_not_degraded() {
    let d = deployment(2, 2, 2, 2, 2);
    let mut o = observed(Some(&d), None, 2);
    o.manifest = ManifestCheck::CatalogPending("reading image x".to_owned());
    let status = compute(None, &o, &at(100));
    let valid = get(&status, types::MANIFEST_VALID);
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("Unknown", "CatalogPending")
    );
    assert_eq!(get(&status, types::DEGRADED).status, "False");
    // The last valid version keeps serving meanwhile.
    assert_eq!(get(&status, types::READY).status, "True");
}

#[test]
fn an_unreadable_catalog_degrades_naming_why_and_warns() {
    let d = deployment(2, 2, 2, 2, 2);
    let mut o = observed(Some(&d), None, 2);
    o.manifest =
        ManifestCheck::CatalogUnavailable("image x cannot be pulled: ErrImageNeverPull".to_owned());
    let status = compute(None, &o, &at(100));
    assert_eq!(get(&status, types::MANIFEST_VALID).status, "Unknown");
    let degraded = get(&status, types::DEGRADED);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "CatalogUnavailable")
    );
    assert!(
        degraded.message.contains("ErrImageNeverPull"),
        "{}",
        degraded.message
    );
    assert!(
        degraded
            .message
            .starts_with("still serving the last valid manifest"),
        "{}",
        degraded.message
    );
    let events = transitions(None, &status);
    assert!(
        events
            .iter()
            .any(|t| t.type_ == types::MANIFEST_VALID && t.warning),
        "{events:?}"
    );
    // With nothing deployed yet, nothing is: not Ready, saying why.
    let mut first = observed(None, None, 1);
    first.manifest = o.manifest;
    let status = compute(None, &first, &at(100));
    let ready = get(&status, types::READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "CatalogUnavailable")
    );
}

#[test]
fn the_autoscalers_session_counts_are_carried_not_computed() {
    let d = deployment(1, 1, 1, 1, 1);
    let mut previous = compute(None, &observed(Some(&d), None, 1), &at(100));
    previous.sessions = Some(crate::crd::SessionCounts {
        active: 3,
        pods: Vec::new(),
    });
    let next = compute(Some(&previous), &observed(Some(&d), None, 1), &at(200));
    assert_eq!(next.sessions, previous.sessions);
    // Nothing else changed: no status write is due.
    assert_eq!(next, previous);
}
