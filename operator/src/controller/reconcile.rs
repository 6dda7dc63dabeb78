//! One reconcile of one Pipeline: validate, apply the children (server-side apply, one field
//! manager), prune what is no longer wanted, write status, publish Events on transitions.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use remotemedia_runtime_core::pod as contract;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Context;
use crate::catalog::fetch::{FetchError, Lookup};
use crate::catalog::{self, Source};
use crate::crd::{Pipeline, PipelineStatus};
use crate::desired::{
    self, BuildError, FIELD_MANAGER, MANAGED_BY, MANAGED_BY_LABEL, PIPELINE_LABEL,
};
use crate::status::{self, ManifestCheck, Observed};
use crate::validation::{check_pipeline, summarize_errors};

/// How often a settled Pipeline is looked at again even without a watch event.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a Pipeline whose image's catalog is being read is looked at again.
const CATALOG_PENDING_RECHECK: Duration = Duration::from_secs(2);
/// How soon a Pipeline whose image's catalog cannot be read is looked at again (the kubelet
/// keeps retrying a pull meanwhile).
const CATALOG_UNAVAILABLE_RECHECK: Duration = Duration::from_secs(30);

/// Why a reconcile failed. Every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Desired state could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done, e.g. `apply Deployment media/voice`.
        action: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The Pipeline could not be turned into JSON for validation.
    #[error("serializing the Pipeline: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Looking up the node catalog of the Pipeline's image failed.
    #[error(transparent)]
    Catalog(#[from] FetchError),
    /// The OS gave no random bytes for the WebRTC replicas' key.
    #[error("no random bytes for the WebRTC replicas' key: {0}")]
    Random(#[source] getrandom::Error),
}

impl ReconcileError {
    /// A short label for the `reconcile_errors_total` metric.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Build(_) => "build",
            Self::Api {
                source: kube::Error::Api(s),
                ..
            } if s.code == 409 => "conflict",
            Self::Api { .. } | Self::Catalog(_) => "api",
            Self::Serialize(_) => "serialize",
            Self::Random(_) => "random",
        }
    }
}

fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ReconcileError {
    let action = action.into();
    move |source| ReconcileError::Api { action, source }
}

/// `namespace/name`, the backoff key.
pub(super) fn key(pipeline: &Pipeline) -> String {
    format!(
        "{}/{}",
        pipeline.namespace().unwrap_or_default(),
        pipeline.name_any()
    )
}

/// Reconciles one Pipeline.
///
/// # Errors
/// Any failed API call; the controller retries with backoff.
pub async fn reconcile(
    pipeline: Arc<Pipeline>,
    context: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = reconcile_pipeline(&pipeline, &context).await;
    context.metrics.reconciled(
        started.elapsed(),
        result.as_ref().err().map(ReconcileError::kind),
    );
    match &result {
        Ok(_) => context.backoff.succeeded(&key(&pipeline)),
        Err(error) => report_failure(&pipeline, &context, error).await,
    }
    result
}

/// Best effort: puts a failed reconcile on the Pipeline's status (Degraded=ReconcileFailed).
async fn report_failure(pipeline: &Pipeline, context: &Context, error: &ReconcileError) {
    let (Some(namespace), false) = (
        pipeline.namespace(),
        pipeline.metadata.deletion_timestamp.is_some(),
    ) else {
        return;
    };
    let previous = pipeline.status.as_ref();
    let next = status::with_failure(
        previous,
        pipeline.metadata.generation,
        truncate(&error.to_string(), 900),
        &now(),
    );
    if previous == Some(&next) {
        return;
    }
    let name = pipeline.name_any();
    if let Err(e) = write_status(&context.client, &namespace, &name, &next).await {
        tracing::warn!(error = %e, "could not record the failure in status");
    }
}

/// Server-side applies `status` as the Pipeline's status subresource.
async fn write_status(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    status: &PipelineStatus,
) -> Result<(), ReconcileError> {
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), namespace);
    // Not status.sessions: the autoscaler owns it (its own field manager); left out here, it
    // is neither overwritten nor removed.
    let status = PipelineStatus {
        sessions: None,
        ..status.clone()
    };
    let patch = json!({
        "apiVersion": Pipeline::api_version(&()),
        "kind": Pipeline::kind(&()),
        "status": status,
    });
    pipelines
        .patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map(|_| ())
        .map_err(api_error(format!(
            "write status of Pipeline {namespace}/{name}"
        )))
}

async fn reconcile_pipeline(
    pipeline: &Pipeline,
    context: &Context,
) -> Result<Action, ReconcileError> {
    if pipeline.metadata.deletion_timestamp.is_some() {
        // Being deleted: the garbage collector removes the children. Applying them now would
        // recreate what it just deleted.
        return Ok(Action::await_change());
    }
    let name = pipeline.name_any();
    let Some(namespace) = pipeline.namespace() else {
        return Err(BuildError::NotStored.into());
    };
    let Some(uid) = pipeline.uid() else {
        return Err(BuildError::NotStored.into());
    };
    let client = &context.client;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);

    let manifest = check_manifest(pipeline, context, &namespace).await?;

    let deployment = if manifest.is_valid() {
        let children = desired::children(pipeline, &context.images)?;
        apply(client, &namespace, &children.config_map).await?;
        if let Some(secret) = &children.replica_key {
            create_replica_key(client, &namespace, secret).await?;
        }
        let deployment = apply(client, &namespace, &children.deployment).await?;
        let mut wanted_services = HashSet::new();
        for service in &children.services {
            apply(client, &namespace, service).await?;
            wanted_services.insert(service.name_any());
        }
        prune::<Service>(client, &namespace, &name, &uid, |s| {
            wanted_services.contains(&s.name_any())
        })
        .await?;
        match &children.pdb {
            Some(pdb) => {
                apply(client, &namespace, pdb).await?;
            }
            None => {
                prune::<PodDisruptionBudget>(client, &namespace, &name, &uid, |_| false).await?;
            }
        }
        prune_manifests(
            client,
            &namespace,
            &name,
            &uid,
            &children.config_map.name_any(),
        )
        .await?;
        Some(deployment)
    } else {
        // Invalid or not yet checked: touch nothing, so the last valid version keeps running.
        deployments
            .get_opt(&name)
            .await
            .map_err(api_error(format!("get Deployment {namespace}/{name}")))?
            .filter(|d| desired::is_owned_by(d.metadata.owner_references.as_deref(), &uid))
    };

    let recheck = match &manifest {
        ManifestCheck::CatalogPending(_) => CATALOG_PENDING_RECHECK,
        ManifestCheck::CatalogUnavailable(_) => CATALOG_UNAVAILABLE_RECHECK,
        ManifestCheck::Valid | ManifestCheck::Invalid(_) => RESYNC,
    };
    let observed = Observed {
        generation: pipeline.metadata.generation,
        manifest,
        deployment: deployment.as_ref(),
        desired_replicas: pipeline.spec.replicas,
        endpoints: desired::endpoints(pipeline),
        selector: desired::pod_selector(&name),
    };
    let previous = pipeline.status.as_ref();
    let next = status::compute(previous, &observed, &now());
    if previous != Some(&next) {
        write_status(client, &namespace, &name, &next).await?;
    }
    for t in status::transitions(previous, &next) {
        let event = Event {
            type_: if t.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: t.reason,
            note: Some(format!(
                "{}={}: {}",
                t.type_,
                t.status,
                truncate(&t.message, 900)
            )),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        // An Event is a courtesy: failing to publish one must not fail the reconcile.
        if let Err(e) = context
            .recorder
            .publish(&event, &pipeline.object_ref(&()))
            .await
        {
            tracing::warn!(error = %e, "could not publish event");
        }
    }
    Ok(Action::requeue(recheck))
}

/// Validates the manifest against the node types of the image the Pipeline runs: the
/// built-ins for the default image, the image's own catalog for any other.
async fn check_manifest(
    pipeline: &Pipeline,
    context: &Context,
    namespace: &str,
) -> Result<ManifestCheck, ReconcileError> {
    let resource = serde_json::to_value(pipeline)?;
    let image = pipeline.spec.runtime.image.as_deref();
    let (registry, image) = match catalog::source(image, &context.images.runtime) {
        Source::Builtins => (None, context.images.runtime.as_str()),
        Source::Image(image) => {
            let lookup = context
                .catalogs
                .lookup(
                    &context.client,
                    namespace,
                    image,
                    &context.images.pull_policy,
                    pipeline.owner_ref(&()),
                )
                .await?;
            match lookup {
                Lookup::Ready(registry) => (Some(registry), image),
                Lookup::Pending(why) => return Ok(ManifestCheck::CatalogPending(why)),
                Lookup::Unavailable(why) => return Ok(ManifestCheck::CatalogUnavailable(why)),
            }
        }
    };
    let report = check_pipeline(&resource, registry.as_deref().unwrap_or(&context.registry));
    Ok(if report.has_errors() {
        ManifestCheck::Invalid(format!(
            "{} (checked against the node types of image {image})",
            summarize_errors(&report, 3)
        ))
    } else {
        ManifestCheck::Valid
    })
}

/// "Now", to the second: the apiserver stores condition times in seconds, and a finer time
/// would make every status differ from the stored one.
fn now() -> Time {
    let seconds = Timestamp::now().as_second();
    Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Server-side applies `object` (its complete intent) and returns what the apiserver stored.
async fn apply<K>(client: &kube::Client, namespace: &str, object: &K) -> Result<K, ReconcileError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let name = object.name_any();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(api_error(format!(
        "apply {} {namespace}/{name}",
        K::kind(&())
    )))
}

/// Creates the replicas' key Secret with 32 random bytes unless it exists: the key must not
/// change while sessions named with it are open, so it is never applied again, and the
/// operator needs only `create` on Secrets (it never reads one).
async fn create_replica_key(
    client: &kube::Client,
    namespace: &str,
    secret: &Secret,
) -> Result<(), ReconcileError> {
    let name = secret.name_any();
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(ReconcileError::Random)?;
    let secret = Secret {
        data: Some(BTreeMap::from([(
            contract::REPLICA_KEY_KEY.to_owned(),
            ByteString(key.to_vec()),
        )])),
        ..secret.clone()
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(api_error(format!("create Secret {namespace}/{name}"))(e)),
    }
}

fn children_selector(pipeline: &str) -> ListParams {
    ListParams::default().labels(&format!(
        "{PIPELINE_LABEL}={pipeline},{MANAGED_BY_LABEL}={MANAGED_BY}"
    ))
}

/// Deletes this Pipeline's children of type `K` that `keep` rejects. Only objects whose
/// controller is this Pipeline (by uid) are touched.
async fn prune<K>(
    client: &kube::Client,
    namespace: &str,
    pipeline: &str,
    uid: &str,
    keep: impl Fn(&K) -> bool,
) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let kind = K::kind(&());
    let existing = api
        .list(&children_selector(pipeline))
        .await
        .map_err(api_error(format!("list {kind} of {namespace}/{pipeline}")))?;
    for object in existing {
        if keep(&object) || !desired::is_owned_by(object.meta().owner_references.as_deref(), uid) {
            continue;
        }
        let name = object.name_any();
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(api_error(format!("delete {kind} {namespace}/{name}"))(e)),
        }
    }
    Ok(())
}

/// Deletes manifest ConfigMaps no pod can need any more: not the current one, and none that a
/// ReplicaSet of this Pipeline with pods (or wanting pods) still mounts, so a rollout in
/// progress or a rollback keeps its manifest.
async fn prune_manifests(
    client: &kube::Client,
    namespace: &str,
    pipeline: &str,
    uid: &str,
    current: &str,
) -> Result<(), ReconcileError> {
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let in_use: HashSet<String> = replica_sets
        .list(&ListParams::default().labels(&format!("{PIPELINE_LABEL}={pipeline}")))
        .await
        .map_err(api_error(format!(
            "list ReplicaSets of {namespace}/{pipeline}"
        )))?
        .into_iter()
        .filter(|rs| {
            let wanted = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let running = rs.status.as_ref().map_or(0, |s| s.replicas);
            wanted > 0 || running > 0
        })
        .flat_map(|rs| {
            rs.spec
                .and_then(|s| s.template)
                .and_then(|t| t.spec)
                .and_then(|s| s.volumes)
                .unwrap_or_default()
        })
        .filter_map(|v| v.config_map.map(|c| c.name))
        .collect();
    prune::<ConfigMap>(client, namespace, pipeline, uid, |cm| {
        let name = cm.name_any();
        name == current || in_use.contains(&name)
    })
    .await
}
