//! Scaling on sessions. Every [`TICK`] the autoscaler counts the open sessions of every
//! Pipeline's worker pods (each runtime container's `/metrics`: the pod link's open sessions,
//! whatever transport they came by), writes them to `status.sessions`, keeps each pod's
//! `controller.kubernetes.io/pod-deletion-cost` at its session count (a ReplicaSet scaling in
//! removes the idlest pods first), and for Pipelines with `spec.autoscaling` sets `replicas`
//! through the scale subresource, as an HPA would, with an Event saying why.
//!
//! Why in the operator rather than an HPA or KEDA object: an HPA on a per-pod session metric
//! needs a custom-metrics adapter (prometheus-adapter, or KEDA's own), and a cluster with
//! nothing else installed has none; the operator already knows the pods, and reading a gauge
//! from each is one HTTP request, no API call. The API is written only when something changed.
//! The decisions themselves are pure ([`decide`](mod@decide)).

pub mod decide;
mod scrape;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use self::decide::{Decision, Look, Memory, Policy, decide, deletion_cost};
use crate::crd::{Pipeline, PodSessions, SessionCounts};
use crate::desired::PIPELINE_LABEL;
use crate::metrics::Metrics;

/// How often sessions are counted.
pub const TICK: Duration = Duration::from_secs(2);
/// The field manager of what the autoscaler writes (status.sessions, pod annotations,
/// replicas), apart from the controller's.
pub const FIELD_MANAGER: &str = "remotemedia-autoscaler";
/// The annotation a ReplicaSet orders its pods by when it removes some (lowest first).
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Runs until `shutdown` resolves, over the Pipelines in `pipelines` (the controller's own
/// store) and the worker pods of `pods` (watched here).
pub async fn run<S>(
    client: Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    pipelines: Store<Pipeline>,
    pods: Api<Pod>,
    shutdown: S,
) where
    S: Future<Output = ()> + Send + 'static,
{
    let (pod_store, writer) = reflector::store();
    let watch = reflector(
        writer,
        watcher(pods, watcher::Config::default().labels(PIPELINE_LABEL)),
    )
    .default_backoff()
    .for_each(|_| std::future::ready(()));
    let mut autoscaler = Autoscaler {
        client,
        recorder,
        metrics,
        memories: HashMap::new(),
    };
    let ticks = async {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if pipelines.is_empty() && pod_store.is_empty() {
                continue;
            }
            autoscaler.tick(&pipelines, &pod_store).await;
        }
    };
    tokio::select! {
        () = watch => tracing::warn!("the pod watch ended"),
        () = ticks => {}
        () = shutdown => {}
    }
}

struct Autoscaler {
    client: Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    memories: HashMap<ObjectRef<Pipeline>, Memory>,
}

/// One worker pod as counted.
struct Counted {
    pod: Arc<Pod>,
    /// Open sessions, `None` when it did not answer.
    sessions: Option<u32>,
    /// Going away (draining): counted in status, not in the decision.
    terminating: bool,
}

impl Autoscaler {
    async fn tick(&mut self, pipelines: &Store<Pipeline>, pods: &Store<Pod>) {
        // The worker pods by (namespace, Pipeline): one pass over the store per tick.
        let mut workers: HashMap<(String, String), Vec<Arc<Pod>>> = HashMap::new();
        for pod in pods.state() {
            let Some(pipeline) = pod.labels().get(PIPELINE_LABEL).cloned() else {
                continue;
            };
            let namespace = pod.namespace().unwrap_or_default();
            workers.entry((namespace, pipeline)).or_default().push(pod);
        }
        let mut live = HashSet::new();
        for pipeline in pipelines.state() {
            let Some(namespace) = pipeline.namespace() else {
                continue;
            };
            let name = pipeline.name_any();
            live.insert(ObjectRef::from_obj(&*pipeline));
            let pods = workers
                .remove(&(namespace.clone(), name.clone()))
                .unwrap_or_default();
            let counted = count(pods).await;
            if let Err(e) = self.act(&pipeline, &namespace, &counted).await {
                tracing::warn!(pipeline = %name, %namespace, error = %e, "autoscaler");
            }
        }
        self.memories.retain(|key, _| live.contains(key));
    }

    async fn act(
        &mut self,
        pipeline: &Pipeline,
        namespace: &str,
        counted: &[Counted],
    ) -> Result<(), kube::Error> {
        let name = pipeline.name_any();
        let sessions = session_counts(counted);
        let previous = pipeline.status.as_ref().and_then(|s| s.sessions.as_ref());
        if previous != Some(&sessions) {
            let api: Api<Pipeline> = Api::namespaced(self.client.clone(), namespace);
            let patch = json!({
                "apiVersion": Pipeline::api_version(&()),
                "kind": Pipeline::kind(&()),
                "status": { "sessions": sessions },
            });
            api.patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
            self.metrics.autoscaler_wrote("status");
        }
        self.keep_deletion_costs(namespace, counted).await?;

        let Some(spec) = &pipeline.spec.autoscaling else {
            return Ok(());
        };
        let policy = Policy::from_spec(spec);
        let deciding: Vec<Option<u32>> = counted
            .iter()
            .filter(|c| !c.terminating)
            .map(|c| c.sessions)
            .collect();
        let memory = self
            .memories
            .entry(ObjectRef::from_obj(pipeline))
            .or_default();
        let decision = decide(
            &policy,
            memory,
            Look {
                replicas: pipeline.spec.replicas,
                sessions: &deciding,
                now: Instant::now(),
            },
        );
        let Decision::Scale { to, reason, .. } = decision else {
            return Ok(());
        };
        let api: Api<Pipeline> = Api::namespaced(self.client.clone(), namespace);
        api.patch_scale(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "spec": { "replicas": to } })),
        )
        .await?;
        self.metrics.autoscaler_wrote("scale");
        let note = decision.note(&policy).unwrap_or_default();
        tracing::info!(pipeline = %name, %namespace, "{note}");
        let event = Event {
            type_: EventType::Normal,
            reason: reason.event_reason().to_owned(),
            note: Some(note),
            action: "Autoscale".to_owned(),
            secondary: None,
        };
        // An Event is a courtesy: failing to publish one must not undo the scaling.
        if let Err(e) = self
            .recorder
            .publish(&event, &pipeline.object_ref(&()))
            .await
        {
            tracing::warn!(error = %e, "could not publish event");
        }
        Ok(())
    }

    /// Sets each answering pod's deletion cost to its session count where it differs.
    async fn keep_deletion_costs(
        &self,
        namespace: &str,
        counted: &[Counted],
    ) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        for c in counted.iter().filter(|c| !c.terminating) {
            let Some(sessions) = c.sessions else { continue };
            let cost = deletion_cost(sessions).to_string();
            if c.pod.annotations().get(DELETION_COST) == Some(&cost) {
                continue;
            }
            let patch = json!({ "metadata": { "annotations": { DELETION_COST: cost } } });
            api.patch(
                &c.pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
            self.metrics.autoscaler_wrote("pod");
        }
        Ok(())
    }
}

/// Each pod's open sessions, asked of all at once.
async fn count(pods: Vec<Arc<Pod>>) -> Vec<Counted> {
    let asked = pods.into_iter().map(|pod| async move {
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
        let sessions = match ip.and_then(|ip| ip.parse().ok()) {
            Some(ip) => scrape::open_sessions(ip).await,
            None => None,
        };
        Counted {
            pod,
            sessions,
            terminating,
        }
    });
    futures::future::join_all(asked).await
}

/// `status.sessions`: the pods that answered, by name.
fn session_counts(counted: &[Counted]) -> SessionCounts {
    let mut pods: Vec<PodSessions> = counted
        .iter()
        .filter_map(|c| {
            Some(PodSessions {
                pod: c.pod.name_any(),
                active: i32::try_from(c.sessions?).unwrap_or(i32::MAX),
            })
        })
        .collect();
    pods.sort_by(|a, b| a.pod.cmp(&b.pod));
    SessionCounts {
        active: pods.iter().map(|p| p.active).sum(),
        pods,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn counted(name: &str, sessions: Option<u32>, terminating: bool) -> Counted {
        Counted {
            pod: Arc::new(Pod {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    deletion_timestamp: terminating.then_some(Time(Timestamp::UNIX_EPOCH)),
                    ..ObjectMeta::default()
                },
                ..Pod::default()
            }),
            sessions,
            terminating,
        }
    }

    #[test]
    fn status_counts_every_answering_pod_by_name_draining_ones_too() {
        let counts = session_counts(&[
            counted("voice-b", Some(2), false),
            counted("voice-a", Some(1), false),
            counted("voice-c", None, false),
            counted("voice-old", Some(4), true),
        ]);
        assert_eq!(counts.active, 7);
        let pods: Vec<(&str, i32)> = counts
            .pods
            .iter()
            .map(|p| (p.pod.as_str(), p.active))
            .collect();
        assert_eq!(pods, [("voice-a", 1), ("voice-b", 2), ("voice-old", 4)]);
        assert_eq!(session_counts(&[]), SessionCounts::default());
    }
}
