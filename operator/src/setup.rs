//! Installing the CRD from code: for the test suites and benchmarks, which start from an empty
//! control plane. (Clusters get it from the Helm chart or `kubectl apply -f crds/`.)

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, CustomResourceExt};

use crate::crd::Pipeline;
use crate::desired::FIELD_MANAGER;

/// Why the CRD could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The apply was refused.
    #[error("applying the Pipeline CRD: {0}")]
    Apply(#[source] kube::Error),
    /// The apiserver did not establish it in time.
    #[error("the Pipeline CRD was not established within {0:?}")]
    NotEstablished(Duration),
}

/// Server-side applies the Pipeline CRD and waits until the apiserver serves it.
///
/// # Errors
/// The apply failed or the CRD was not established within 30 s.
pub async fn apply_crd(client: &Client) -> Result<(), SetupError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Pipeline::crd();
    let name = crd.metadata.name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .map_err(SetupError::Apply)?;
    let timeout = Duration::from_secs(30);
    match tokio::time::timeout(
        timeout,
        await_condition(api, &name, conditions::is_crd_established()),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        _ => Err(SetupError::NotEstablished(timeout)),
    }
}
