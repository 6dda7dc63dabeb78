//! Desired state: the child objects one `Pipeline` should have, as pure functions of the
//! resource and the operator's settings. No IO here, so all of it is unit-tested.
//!
//! ```text
//! Pipeline ──► ConfigMap <name>-manifest-<hash>   (immutable; the manifest as JSON)
//!          ──► Deployment <name>                  (pod template carries the manifest hash)
//!          ──► Service <name>-grpc / <name>-webrtc (one per enabled transport)
//!          ──► PodDisruptionBudget <name>          (only when replicas > 1)
//! ```

mod pod;
mod services;
mod webrtc;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};
use remotemedia_runtime_core::manifest::Manifest;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::crd::{Endpoints, Pipeline};

pub use pod::{RUNTIME_CONTAINER, hardened_container, pod_security};
pub use remotemedia_runtime_core::pod::MANIFEST_FILE;
pub use services::{grpc_service_name, webrtc_service_name};
pub use webrtc::replica_key_secret_name;

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "remotemedia-operator";
/// Label naming the Pipeline an object belongs to; also the pods' selector.
pub const PIPELINE_LABEL: &str = "remotemedia.dev/pipeline";
/// Label on every object the operator creates (used to scope its watches).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "remotemedia-operator";
/// Pod-template annotation and ConfigMap label holding the manifest hash: a new hash rolls
/// the pods, anything else in the Pipeline does not.
pub const MANIFEST_HASH_KEY: &str = "remotemedia.dev/manifest-hash";

/// Container images of the worker pods, from the operator's flags (Helm values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerImages {
    /// `remotemedia-runtime` image.
    pub runtime: String,
    /// `remotemedia-grpc` image.
    pub grpc: String,
    /// `remotemedia-webrtc` image.
    pub webrtc: String,
    /// `imagePullPolicy` for all of them (`IfNotPresent` when unset).
    pub pull_policy: String,
}

/// Why desired state could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// The resource has not been stored yet (no uid for owner references).
    #[error("the Pipeline has no uid or namespace yet")]
    NotStored,
    /// `spec.transports.webrtc.advertiseAddress` is not an IP address.
    #[error("spec.transports.webrtc.advertiseAddress: {value:?} is not an IP address")]
    AdvertiseAddress {
        /// The value given.
        value: String,
        /// Why it does not parse.
        #[source]
        source: std::net::AddrParseError,
    },
    /// A number the CRD schema bounds is out of its range (the schema was bypassed).
    #[error("{field}: {value} is out of range")]
    OutOfRange {
        /// The field path.
        field: &'static str,
        /// The value given.
        value: i32,
    },
}

/// All children of one Pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    /// The manifest, named by its hash.
    pub config_map: ConfigMap,
    /// The worker pods.
    pub deployment: Deployment,
    /// One per enabled transport.
    pub services: Vec<Service>,
    /// Only when more than one replica is wanted.
    pub pdb: Option<PodDisruptionBudget>,
    /// With WebRTC on: the Secret of the key its replicas share, without its data (the
    /// controller creates it once, with random bytes, and never changes it).
    pub replica_key: Option<Secret>,
    /// Hash of the manifest the pods will run.
    pub manifest_hash: String,
}

/// The manifest as canonical JSON (object keys sorted), so that its hash depends only on
/// its content, not on how the author ordered the params.
#[must_use]
pub fn canonical_manifest_json(manifest: &Manifest) -> String {
    fn sort(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let sorted: BTreeMap<String, Value> =
                    map.into_iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sort).collect()),
            other => other,
        }
    }
    let value = serde_json::to_value(manifest).unwrap_or(Value::Null);
    sort(value).to_string()
}

/// Hex SHA-256 of `text`.
#[must_use]
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Labels every child of `name` carries.
#[must_use]
pub fn child_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PIPELINE_LABEL.to_owned(), name.to_owned()),
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (
            "app.kubernetes.io/name".to_owned(),
            "remotemedia-pipeline".to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), name.to_owned()),
    ])
}

/// The label selector of the worker pods, as `status.selector` shows it.
#[must_use]
pub fn pod_selector(name: &str) -> String {
    format!("{PIPELINE_LABEL}={name}")
}

/// Name of the ConfigMap holding the manifest with this hash.
#[must_use]
pub fn config_map_name(pipeline: &str, hash: &str) -> String {
    format!("{pipeline}-manifest-{}", &hash[..10])
}

/// Builds every child of `pipeline`.
///
/// # Errors
/// [`BuildError::NotStored`] when the resource has no uid or namespace; the others when a spec
/// value does not fit the containers' flags.
pub fn children(pipeline: &Pipeline, images: &WorkerImages) -> Result<Children, BuildError> {
    let mut owner = pipeline
        .controller_owner_ref(&())
        .ok_or(BuildError::NotStored)?;
    // Foreground deletion of the Pipeline then waits for its children to go.
    owner.block_owner_deletion = Some(true);
    let namespace = pipeline.namespace().ok_or(BuildError::NotStored)?;
    let name = pipeline.name_any();
    let manifest_json = canonical_manifest_json(&pipeline.spec.manifest);
    let manifest_hash = sha256_hex(&manifest_json);
    let meta = |object_name: String| ObjectMeta {
        name: Some(object_name),
        namespace: Some(namespace.clone()),
        labels: Some(child_labels(&name)),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    };

    let cm_name = config_map_name(&name, &manifest_hash);
    let mut cm_meta = meta(cm_name.clone());
    cm_meta
        .labels
        .get_or_insert_default()
        .insert(MANIFEST_HASH_KEY.to_owned(), manifest_hash[..16].to_owned());
    let config_map = ConfigMap {
        metadata: cm_meta,
        immutable: Some(true),
        data: Some(BTreeMap::from([(MANIFEST_FILE.to_owned(), manifest_json)])),
        ..ConfigMap::default()
    };

    let template = pod::template(pipeline, images, &cm_name, &manifest_hash)?;
    let deployment = Deployment {
        metadata: meta(name.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(pipeline.spec.replicas),
            selector: selector(&name),
            template,
            // New pods first: a rollout never lowers the number of pods taking sessions.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            revision_history_limit: Some(5),
            ..DeploymentSpec::default()
        }),
        status: None,
    };

    let services = services::services(pipeline, &meta);
    let pdb = (pipeline.spec.replicas > 1).then(|| PodDisruptionBudget {
        metadata: meta(name.clone()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector(&name)),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    });

    let replica_key = pipeline.spec.transports.webrtc.enabled.then(|| Secret {
        metadata: meta(replica_key_secret_name(&name)),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    });

    Ok(Children {
        config_map,
        deployment,
        services,
        pdb,
        replica_key,
        manifest_hash,
    })
}

fn selector(name: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            PIPELINE_LABEL.to_owned(),
            name.to_owned(),
        )])),
        ..LabelSelector::default()
    }
}

/// Where clients reach the enabled transports, for `status.endpoints`.
#[must_use]
pub fn endpoints(pipeline: &Pipeline) -> Endpoints {
    let namespace = pipeline.namespace().unwrap_or_default();
    let name = pipeline.name_any();
    let transports = &pipeline.spec.transports;
    Endpoints {
        // `grpcs://` when clients must speak TLS; plain `host:port` (what gRPC clients take)
        // otherwise.
        grpc: transports.grpc.enabled.then(|| {
            let scheme = if transports.grpc.tls_secret.is_some() {
                "grpcs://"
            } else {
                ""
            };
            format!(
                "{scheme}{}.{namespace}.svc:{}",
                grpc_service_name(&name),
                transports.grpc.port
            )
        }),
        webrtc: transports.webrtc.enabled.then(|| {
            let scheme = if transports.webrtc.tls_secret.is_some() {
                "https"
            } else {
                "http"
            };
            format!(
                "{scheme}://{}.{namespace}.svc:{}/whip",
                webrtc_service_name(&name),
                transports.webrtc.http_port
            )
        }),
        ice_servers: if transports.webrtc.enabled {
            transports
                .webrtc
                .ice_servers
                .iter()
                .flat_map(|server| server.urls.iter().cloned())
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// True when `owner` lists `uid` as its controller (used to prune only our own children).
#[must_use]
pub fn is_owned_by(owners: Option<&[OwnerReference]>, uid: &str) -> bool {
    owners
        .unwrap_or_default()
        .iter()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

#[cfg(test)]
mod tests;
