//! The Pipeline controller: watches Pipelines and the children it owns, and runs
//! [`reconcile`](reconcile::reconcile) for each change. IO lives here and in `reconcile`;
//! what to write comes from the pure `desired` and `status` modules.

mod backoff;
mod reconcile;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client};
use remotemedia_runtime_core::nodes::NodeRegistry;

pub use backoff::Backoff;
pub use reconcile::{ReconcileError, reconcile};

use crate::catalog::fetch::Catalogs;
use crate::crd::Pipeline;
use crate::desired::{MANAGED_BY, MANAGED_BY_LABEL, WorkerImages};
use crate::metrics::Metrics;

/// What every reconcile needs.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Worker images.
    pub images: WorkerImages,
    /// Node types of the default runtime image (the built-ins), for manifest validation.
    pub registry: NodeRegistry,
    /// Node types of other runtime images, read from the images themselves.
    pub catalogs: Catalogs,
    /// Publishes Events on Pipelines.
    pub recorder: Recorder,
    /// Operator metrics.
    pub metrics: Arc<Metrics>,
    /// Per-Pipeline retry delays after failures.
    pub backoff: Backoff,
}

impl Context {
    /// A context reporting Events as `remotemedia-operator` from `instance` (the pod name).
    #[must_use]
    pub fn new(
        client: Client,
        images: WorkerImages,
        metrics: Arc<Metrics>,
        instance: Option<String>,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGED_BY.to_owned(),
                instance,
            },
        );
        Self {
            client,
            images,
            registry: NodeRegistry::with_builtins(),
            catalogs: Catalogs::default(),
            recorder,
            metrics,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        }
    }
}

/// Which namespaces to watch: all of them, or a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace (needs a ClusterRole).
    AllNamespaces,
    /// Only these.
    Namespaces(Vec<String>),
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until `shutdown` resolves, then finishes the reconciles in flight.
pub async fn run<S>(context: Arc<Context>, scope: Scope, shutdown: S)
where
    S: Future<Output = ()> + Clone + Send + Sync + 'static,
{
    let namespaces: Vec<Option<String>> = match scope {
        Scope::AllNamespaces => vec![None],
        Scope::Namespaces(list) => list.into_iter().map(Some).collect(),
    };
    let controllers = namespaces.into_iter().map(|ns| {
        let client = &context.client;
        let ns = ns.as_deref();
        let owned = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
        let controller = Controller::new(
            api::<Pipeline>(client, ns),
            watcher::Config::default().any_semantic(),
        )
        .owns(api::<Deployment>(client, ns), owned.clone())
        .owns(api::<Service>(client, ns), owned.clone())
        .owns(api::<PodDisruptionBudget>(client, ns), owned)
        .with_config(
            controller::Config::default()
                .concurrency(16)
                // Our own applies echo back as a burst of watch events within a few ms;
                // a short debounce folds them into one reconcile without delaying the first
                // (docs/benchmarks.md: 100 ms here cost 100 ms of apply-to-Deployment latency).
                .debounce(Duration::from_millis(10)),
        )
        .graceful_shutdown_on(shutdown.clone());
        context.metrics.watch_store(controller.store());
        let autoscaler = crate::autoscale::run(
            client.clone(),
            context.recorder.clone(),
            context.metrics.clone(),
            controller.store(),
            api::<Pod>(client, ns),
            shutdown.clone(),
        );
        let reconciling = controller
            .run(reconcile, error_policy, context.clone())
            .for_each(|result| async move {
                match result {
                    Ok((object, _)) => tracing::debug!(%object, "reconciled"),
                    Err(controller::Error::ReconcilerFailed(e, object)) => {
                        tracing::warn!(%object, error = %e, "reconcile failed");
                    }
                    // An owned object changed after its Pipeline was deleted: nothing to do.
                    Err(controller::Error::ObjectNotFound(object)) => {
                        tracing::debug!(%object, "owner already deleted");
                    }
                    Err(e) => tracing::warn!(error = %e, "controller error"),
                }
            });
        async move {
            futures::join!(reconciling, autoscaler);
        }
    });
    futures::future::join_all(controllers).await;
}

/// Retries a failed Pipeline after an exponentially growing delay (1 s doubling to 5 min),
/// so a persistent error never hot-loops.
#[allow(clippy::needless_pass_by_value)] // the signature kube's Controller::run requires
fn error_policy(
    pipeline: Arc<Pipeline>,
    error: &ReconcileError,
    context: Arc<Context>,
) -> controller::Action {
    let delay = context.backoff.failed(&reconcile::key(&pipeline));
    tracing::info!(error = %error, retry_in = ?delay, "will retry");
    controller::Action::requeue(delay)
}
