//! Scaling on sessions: a Pipeline with `autoscaling {minReplicas: 1, maxReplicas: 3,
//! targetSessionsPerPod: 2}`. Five held gRPC sessions bring it to three ready pods; four end,
//! and it comes back to one pod while the fifth streams on, losing no frame; `kubectl get pl`
//! shows the sessions; Events say why each change happened.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use remotemedia_operator::crd::Pipeline;

use crate::session::OpenSession;
use crate::stream::{remove_pipeline, serving_addr};
use crate::support::{WAIT, apply_until_ready, kubectl, run};

const NAME: &str = "scaled";

fn pipeline_yaml() -> String {
    format!(
        r"apiVersion: remotemedia.dev/v1alpha1
kind: Pipeline
metadata:
  name: {NAME}
spec:
  autoscaling: {{ minReplicas: 1, maxReplicas: 3, targetSessionsPerPod: 2, scaleDownDelaySeconds: 5 }}
  manifest:
    version: v1
    nodes:
      - {{ id: window, node_type: AudioChunkerNode, params: {{ chunk_size: 4800 }} }}
      - {{ id: level, node_type: AudioLevelNode }}
    connections:
      - {{ from: window, to: level }}
"
    )
}

pub async fn scales_on_sessions_and_never_cuts_one(client: &Client, ns: &str) {
    apply_until_ready(client, ns, &pipeline_yaml(), NAME).await;
    let api: Api<Pipeline> = Api::namespaced(client.clone(), ns);
    let reach = serving_addr(client, ns, &format!("{NAME}-grpc")).await;

    // The load step: five sessions on the one pod there is.
    let mut sessions = Vec::new();
    for _ in 0..5 {
        sessions.push(OpenSession::open(reach.addr).await.0);
    }
    let loaded = Instant::now();
    let mut rounds = 0_u64;
    until(&mut sessions, &mut rounds, "3 ready pods", || async {
        let p = api.get(NAME).await.expect("get");
        let status = p.status.unwrap_or_default();
        status.ready_replicas == 3 && status.sessions.is_some_and(|s| s.active == 5)
    })
    .await;
    println!(
        "    5 sessions -> 3 ready pods in {:.1?} from the load step",
        loaded.elapsed()
    );
    let table = run(kubectl().args(["get", "pipeline", NAME, "-n", ns]));
    let (head, row) = table.split_once('\n').expect("a header and a row");
    let column = head
        .split_whitespace()
        .position(|c| c == "SESSIONS")
        .unwrap_or_else(|| panic!("no SESSIONS column: {table}"));
    assert_eq!(
        row.split_whitespace().nth(column),
        Some("5"),
        "kubectl get pl: {table}"
    );

    // Four end; the fifth streams on through the scale-in.
    let mut keeper = sessions.pop().expect("five");
    for session in sessions {
        assert_eq!(session.finish().await, "completed");
    }
    let mut kept = vec![keeper];
    until(&mut kept, &mut rounds, "back to 1 pod", || async {
        let p = api.get(NAME).await.expect("get");
        let pods = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&format!("remotemedia.dev/pipeline={NAME}")))
            .await
            .expect("pods")
            .items;
        let status = p.status.unwrap_or_default();
        p.spec.replicas == 1
            && pods.len() == 1
            && status.ready_replicas == 1
            && status.sessions.is_some_and(|s| s.active == 1)
    })
    .await;
    keeper = kept.pop().expect("the keeper");
    let sent = keeper.sent;
    assert_eq!(
        keeper.finish().await,
        "completed",
        "after {sent} frames through the scale-in"
    );
    println!("    the kept session: {sent} frames, each answered, through up and down");

    // The Events say why, each change.
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let notes = eventually_async("the ScaledUp and ScaledDown Events", || async {
        let notes: Vec<String> = events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref().is_some_and(|r| r.starts_with("Scaled")))
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(NAME))
            .filter_map(|e| e.note)
            .collect();
        (notes.len() >= 2).then_some(notes)
    })
    .await;
    for expected in [
        "scaled up from 1 to 3 pods: 5 open sessions",
        "scaled down from 3 to 1 pods",
    ] {
        assert!(
            notes.iter().any(|n| n.contains(expected)),
            "{expected:?} not in {notes:?}"
        );
    }
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("remotemedia.dev/pipeline={NAME}")))
        .await
        .expect("pods");
    assert_eq!(
        pods.items.len(),
        1,
        "{:?}",
        pods.items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>()
    );
    remove_pipeline(client, ns, NAME).await;
}

/// Polls `probe` (an API read) every 250 ms until it gives `Some`, or fails after [`WAIT`].
async fn eventually_async<T, F, Fut>(what: &str, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not {what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Keeps every session streaming (a window each, answered, every 100 ms) until `done`, or fails
/// after [`WAIT`] naming `what`.
async fn until<F, Fut>(sessions: &mut [OpenSession], rounds: &mut u64, what: &str, done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        for session in sessions.iter_mut() {
            session.round().await;
        }
        *rounds += 1;
        if rounds.is_multiple_of(5) && done().await {
            return;
        }
        assert!(Instant::now() < deadline, "not {what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
