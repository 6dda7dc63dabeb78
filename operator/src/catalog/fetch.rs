//! Finding an image's node catalog: in its ConfigMap (one GET per reconcile, parsed once per
//! version of the ConfigMap), else by running the probe pod and reading its log. Deleting the
//! ConfigMap makes the next reconcile read the image again (a tag that moved, say); so does a
//! kept catalog this build cannot read (written by an operator of another version).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, LogParams, PostParams};
use kube::{Api, Client, ResourceExt};

use super::{
    PROBE_CONTAINER, ProbeState, RETRY_FAILED_AFTER_SECONDS, config_map, from_config_map,
    object_name, probe_pod, probe_state, read_log,
};

/// An image's node types, as far as they are known.
#[derive(Clone)]
pub enum Lookup {
    /// Known: a registry of the image's node types (described, for validation).
    Ready(Arc<remotemedia_runtime_core::nodes::NodeRegistry>),
    /// Being read: what is happening.
    Pending(String),
    /// Cannot be read: why.
    Unavailable(String),
}

/// Why looking an image's catalog up failed (retried with backoff).
#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
pub struct FetchError {
    /// What was being done, e.g. `create Pod media/remotemedia-catalog-…`.
    pub action: String,
    /// The client's error.
    #[source]
    pub source: kube::Error,
}

fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> FetchError {
    let action = action.into();
    move |source| FetchError { action, source }
}

type Parsed = Arc<remotemedia_runtime_core::nodes::NodeRegistry>;

/// What a kept ConfigMap holds.
enum Kept {
    Found(Lookup),
    /// A catalog this build does not read (another version): to be read again.
    Stale,
}

/// Parsed catalogs by (namespace, image, ConfigMap resourceVersion).
#[derive(Default)]
pub struct Catalogs {
    parsed: Mutex<HashMap<(String, String), (String, Parsed)>>,
}

impl Catalogs {
    /// `image`'s node types in `namespace`, reading them with a probe pod (pulled with
    /// `pull_policy`, owned by `owner`) when no ConfigMap holds them yet.
    ///
    /// # Errors
    /// [`FetchError`] when an API call fails.
    pub async fn lookup(
        &self,
        client: &Client,
        namespace: &str,
        image: &str,
        pull_policy: &str,
        owner: Option<OwnerReference>,
    ) -> Result<Lookup, FetchError> {
        let name = object_name(image);
        let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        if let Some(kept) = config_maps
            .get_opt(&name)
            .await
            .map_err(api_error(format!("get ConfigMap {namespace}/{name}")))?
        {
            match self.read_kept(namespace, image, &kept) {
                // Kept by an operator that wrote another catalog version: read the image again.
                Kept::Stale => delete_if_present(&config_maps, namespace, &name).await?,
                Kept::Found(lookup) => return Ok(lookup),
            }
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let Some(pod) = pods
            .get_opt(&name)
            .await
            .map_err(api_error(format!("get Pod {namespace}/{name}")))?
        else {
            match pods
                .create(
                    &PostParams::default(),
                    &probe_pod(namespace, image, pull_policy, owner),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(api_error(format!("create Pod {namespace}/{name}"))(e)),
            }
            return Ok(Lookup::Pending(format!(
                "reading the node types of image {image} (pod {name} started)"
            )));
        };
        let failed = match probe_state(&pod) {
            ProbeState::Running(phase) => {
                return Ok(Lookup::Pending(format!(
                    "reading the node types of image {image} (pod {name}: {phase})"
                )));
            }
            ProbeState::PullFailed(why) => {
                return Ok(Lookup::Unavailable(format!(
                    "image {image} cannot be pulled (pod {name}): {why}"
                )));
            }
            ProbeState::Failed(why) => why,
            ProbeState::Succeeded { image_id } => {
                let log = pods
                    .logs(
                        &name,
                        &LogParams {
                            container: Some(PROBE_CONTAINER.to_owned()),
                            ..LogParams::default()
                        },
                    )
                    .await
                    .map_err(api_error(format!("read the log of Pod {namespace}/{name}")))?;
                match read_log(&log) {
                    Ok((catalog, registry)) => {
                        let kept = config_map(namespace, image, image_id.as_deref(), &catalog);
                        let stored = match config_maps.create(&PostParams::default(), &kept).await {
                            Ok(stored) => stored,
                            Err(kube::Error::Api(s)) if s.code == 409 => kept,
                            Err(e) => {
                                return Err(api_error(format!(
                                    "create ConfigMap {namespace}/{name}"
                                ))(e));
                            }
                        };
                        delete_if_present(&pods, namespace, &name).await?;
                        let registry = Arc::new(registry);
                        self.remember(namespace, image, &stored, &registry);
                        return Ok(Lookup::Ready(registry));
                    }
                    Err(e) => e.to_string(),
                }
            }
        };
        // A failed probe stays for a while for people to look at, then runs again.
        let age = pod
            .creation_timestamp()
            .map_or(0, |t| Timestamp::now().as_second() - t.0.as_second());
        if age > RETRY_FAILED_AFTER_SECONDS {
            delete_if_present(&pods, namespace, &name).await?;
        }
        Ok(Lookup::Unavailable(format!(
            "image {image} did not list its node types (pod {name}): {failed}"
        )))
    }

    fn read_kept(&self, namespace: &str, image: &str, kept: &ConfigMap) -> Kept {
        let key = (namespace.to_owned(), image.to_owned());
        let version = kept.resource_version().unwrap_or_default();
        let mut parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((v, registry)) = parsed.get(&key)
            && *v == version
        {
            return Kept::Found(Lookup::Ready(registry.clone()));
        }
        match from_config_map(kept, image) {
            Some(Ok(registry)) => {
                let registry = Arc::new(registry);
                parsed.insert(key, (version, registry.clone()));
                Kept::Found(Lookup::Ready(registry))
            }
            Some(Err(e)) => {
                tracing::info!(%namespace, %image, error = %e, "kept node catalog unreadable; reading the image again");
                Kept::Stale
            }
            None => Kept::Found(Lookup::Unavailable(format!(
                "ConfigMap {namespace}/{} exists but is not the node catalog of image {image}",
                kept.name_any()
            ))),
        }
    }

    fn remember(&self, namespace: &str, image: &str, stored: &ConfigMap, registry: &Parsed) {
        if let Some(version) = stored.resource_version() {
            self.parsed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    (namespace.to_owned(), image.to_owned()),
                    (version, registry.clone()),
                );
        }
    }
}

/// Deletes `name` (in the background); one already gone is fine.
async fn delete_if_present<K>(api: &Api<K>, namespace: &str, name: &str) -> Result<(), FetchError>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(api_error(format!(
            "delete {} {namespace}/{name}",
            K::kind(&())
        ))(e)),
    }
}
