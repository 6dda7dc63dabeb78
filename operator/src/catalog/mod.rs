//! The node catalog of a runtime image: which node types a Pipeline on that image can use.
//!
//! The operator's own build knows the built-in node types, which is every node type the
//! default runtime image runs, so Pipelines on that image are checked at once, as before. Any
//! other image (`spec.runtime.image`: the Python image, a user's node image) may run more,
//! and only the image can say which: the operator runs it once per image and namespace as a
//! one-off pod, `remotemedia-runtime nodes --json` (the versioned shape of
//! docs/node-catalog.md), reads the pod's output, and keeps the catalog in a ConfigMap
//! beside it, so it survives operator restarts and is read once per image, not per
//! reconcile. The pod runs in the Pipeline's namespace, with the worker pods' pull policy and
//! security settings: what pulls there pulls for the workers too.
//!
//! This module is the pure part (names, the probe pod, what a probe pod's state means, the
//! ConfigMap); [`fetch`] does the IO. Like KServe's ServingRuntime declaring what it
//! supports, but filled in by the image itself rather than by hand.

pub mod fetch;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EmptyDirVolumeSource, EnvVar, Pod, PodSpec, ResourceRequirements, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use remotemedia_runtime_core::nodes::{CatalogError, NodeCatalog, NodeRegistry};
use remotemedia_runtime_core::pod::CatalogProbe;

use crate::desired::{MANAGED_BY, MANAGED_BY_LABEL, hardened_container, pod_security, sha256_hex};

/// Label on the probe pod and the ConfigMap: the image's hash.
pub const CATALOG_LABEL: &str = "remotemedia.dev/catalog";
/// Annotation on both naming the image.
pub const IMAGE_ANNOTATION: &str = "remotemedia.dev/image";
/// Annotation on the ConfigMap: the image ID (digest) the probe ran.
pub const IMAGE_ID_ANNOTATION: &str = "remotemedia.dev/image-id";
/// The catalog's key in its ConfigMap.
pub const CATALOG_KEY: &str = "catalog.json";
/// A probe that has not finished by then is failed by the kubelet (a hung interpreter, a
/// node type whose import blocks).
pub const PROBE_DEADLINE_SECONDS: i64 = 120;
/// A failed probe is kept this long (for `kubectl describe`), then deleted and run again.
pub const RETRY_FAILED_AFTER_SECONDS: i64 = 300;
const PROBE_CONTAINER: &str = "catalog";

/// Where a Pipeline's node types come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// The default runtime image: the built-ins this operator was built with.
    Builtins,
    /// Another image, whose catalog must be read.
    Image(&'a str),
}

/// The source for a Pipeline running `image` (`None`: the default) when the default runtime
/// image is `default_image`.
#[must_use]
pub fn source<'a>(image: Option<&'a str>, default_image: &str) -> Source<'a> {
    match image {
        Some(image) if image != default_image => Source::Image(image),
        _ => Source::Builtins,
    }
}

/// The probe pod's and the ConfigMap's name for `image`.
#[must_use]
pub fn object_name(image: &str) -> String {
    format!("remotemedia-catalog-{}", &sha256_hex(image)[..16])
}

fn labels(image: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (CATALOG_LABEL.to_owned(), sha256_hex(image)[..16].to_owned()),
    ])
}

fn meta(namespace: &str, image: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(object_name(image)),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels(image)),
        annotations: Some(BTreeMap::from([(
            IMAGE_ANNOTATION.to_owned(),
            image.to_owned(),
        )])),
        ..ObjectMeta::default()
    }
}

/// The one-off pod printing `image`'s catalog. Its stdout is the catalog; on failure its
/// last log lines become the termination message the operator reports. `owner` (the
/// Pipeline that asked, not as controller) takes a probe that never finishes, say on an image
/// that cannot be pulled, away with it.
#[must_use]
pub fn probe_pod(
    namespace: &str,
    image: &str,
    pull_policy: &str,
    owner: Option<OwnerReference>,
) -> Pod {
    let quantity = |q: &str| Quantity(q.to_owned());
    let mut metadata = meta(namespace, image);
    metadata.owner_references = owner.map(|o| vec![o]);
    Pod {
        metadata,
        spec: Some(PodSpec {
            containers: vec![Container {
                name: PROBE_CONTAINER.to_owned(),
                image: Some(image.to_owned()),
                args: Some(CatalogProbe.args()),
                // Only errors on stderr, so the log is the catalog and little else.
                env: Some(vec![EnvVar {
                    name: "RUST_LOG".to_owned(),
                    value: Some("error".to_owned()),
                    ..EnvVar::default()
                }]),
                termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([
                        ("cpu".to_owned(), quantity("50m")),
                        ("memory".to_owned(), quantity("64Mi")),
                    ])),
                    limits: Some(BTreeMap::from([("memory".to_owned(), quantity("512Mi"))])),
                    ..ResourceRequirements::default()
                }),
                volume_mounts: Some(vec![VolumeMount {
                    name: "tmp".to_owned(),
                    mount_path: "/tmp".to_owned(),
                    ..VolumeMount::default()
                }]),
                ..hardened_container(pull_policy)
            }],
            volumes: Some(vec![Volume {
                name: "tmp".to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            }]),
            restart_policy: Some("Never".to_owned()),
            active_deadline_seconds: Some(PROBE_DEADLINE_SECONDS),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            security_context: Some(pod_security()),
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// What a probe pod's state means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeState {
    /// Still starting or running.
    Running(String),
    /// Exited 0: its log holds the catalog. The image ID (digest) it ran, when reported.
    Succeeded {
        /// `status.containerStatuses[].imageID`.
        image_id: Option<String>,
    },
    /// The image cannot be pulled (kept as is: the kubelet retries the pull).
    PullFailed(String),
    /// Exited non-zero or was stopped at its deadline: why, from its termination message.
    Failed(String),
}

/// Reads a probe pod's state.
#[must_use]
pub fn probe_state(pod: &Pod) -> ProbeState {
    let status = pod.status.clone().unwrap_or_default();
    let container = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == PROBE_CONTAINER);
    let phase = status.phase.unwrap_or_default();
    let waiting = container
        .as_ref()
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref());
    let terminated = container
        .as_ref()
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    match phase.as_str() {
        "Succeeded" => ProbeState::Succeeded {
            image_id: container.map(|c| c.image_id).filter(|id| !id.is_empty()),
        },
        "Failed" => {
            let why = match terminated {
                Some(t) => format!(
                    "exited with code {}{}",
                    t.exit_code,
                    t.message
                        .as_deref()
                        .map(|m| format!(": {}", last_lines(m, 6)))
                        .unwrap_or_default()
                ),
                None => status
                    .message
                    .or(status.reason)
                    .unwrap_or_else(|| "failed".to_owned()),
            };
            ProbeState::Failed(why)
        }
        _ => match waiting {
            Some(w)
                if matches!(
                    w.reason.as_deref(),
                    Some(
                        "ErrImagePull"
                            | "ImagePullBackOff"
                            | "ErrImageNeverPull"
                            | "InvalidImageName"
                    )
                ) =>
            {
                ProbeState::PullFailed(format!(
                    "{}: {}",
                    w.reason.as_deref().unwrap_or_default(),
                    w.message.as_deref().unwrap_or("the image cannot be pulled")
                ))
            }
            Some(w) => ProbeState::Running(w.reason.clone().unwrap_or_else(|| phase.clone())),
            None => ProbeState::Running(if phase.is_empty() {
                "Pending".to_owned()
            } else {
                phase
            }),
        },
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Why a probe's output is not a catalog.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No JSON object in the log.
    #[error(
        "its output holds no JSON node catalog (is the image's entrypoint remotemedia-runtime?)"
    )]
    NoCatalog,
    /// A JSON object that is not a catalog this operator reads.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// The catalog in a probe's log: the first JSON object starting a line (anything the image
/// wrote to stderr around it is skipped), checked by turning it into a registry.
///
/// # Errors
/// [`ReadError`] when there is none or it is not a catalog of the documented shape.
pub fn read_log(log: &str) -> Result<(NodeCatalog, NodeRegistry), ReadError> {
    let start = log
        .match_indices('{')
        .map(|(i, _)| i)
        .find(|&i| i == 0 || log.as_bytes()[i - 1] == b'\n')
        .ok_or(ReadError::NoCatalog)?;
    let value = serde_json::Deserializer::from_str(&log[start..])
        .into_iter::<serde_json::Value>()
        .next()
        .and_then(Result::ok)
        .ok_or(ReadError::NoCatalog)?;
    let catalog = NodeCatalog::from_json(&value.to_string())?;
    let registry = NodeRegistry::from_catalog(&catalog)?;
    Ok((catalog, registry))
}

/// The ConfigMap keeping `image`'s catalog.
#[must_use]
pub fn config_map(
    namespace: &str,
    image: &str,
    image_id: Option<&str>,
    catalog: &NodeCatalog,
) -> ConfigMap {
    let mut metadata = meta(namespace, image);
    if let (Some(annotations), Some(id)) = (metadata.annotations.as_mut(), image_id) {
        annotations.insert(IMAGE_ID_ANNOTATION.to_owned(), id.to_owned());
    }
    ConfigMap {
        metadata,
        data: Some(BTreeMap::from([(
            CATALOG_KEY.to_owned(),
            catalog.to_json(),
        )])),
        ..ConfigMap::default()
    }
}

/// The catalog kept in a ConfigMap, if it holds one for `image`.
///
/// # Errors
/// [`ReadError`] when the ConfigMap's catalog does not read.
pub fn from_config_map(
    config_map: &ConfigMap,
    image: &str,
) -> Option<Result<NodeRegistry, ReadError>> {
    let annotated = config_map
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(IMAGE_ANNOTATION));
    if annotated.map(String::as_str) != Some(image) {
        return None;
    }
    let text = config_map.data.as_ref()?.get(CATALOG_KEY)?;
    Some(
        NodeCatalog::from_json(text)
            .and_then(|c| NodeRegistry::from_catalog(&c))
            .map_err(ReadError::from),
    )
}

#[cfg(test)]
mod tests;
