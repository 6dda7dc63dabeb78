//! A Pipeline's life after it first serves: refusal of bad specs, scaling, rollouts with open
//! sessions, a crashing runtime, an operator restart, deletion.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::ListParams;
use kube::runtime::wait::Condition as _;
use kube::{Api, Client, ResourceExt};
use remotemedia_operator::crd::Pipeline;

use crate::session::OpenSession;
use crate::stream::serving_addr;
use crate::support::{
    OPERATOR_NS, RELEASE, WAIT, apply, eventually, kubectl, output, pipeline_ready, pod_addr,
    python_stream, run, wait_for, wait_gone,
};

const NAME: &str = "audio-health";
const SELECTOR: &str = "remotemedia.dev/pipeline=audio-health";

/// The admission webhook refuses a Pipeline whose manifest is broken, naming the problems by
/// field path and node id; nothing is stored.
pub async fn invalid_pipeline_is_refused(client: &Client, ns: &str) {
    let yaml = r"
apiVersion: remotemedia.dev/v1alpha1
kind: Pipeline
metadata: {name: broken}
spec:
  manifest:
    version: v1
    metadata: {name: broken}
    nodes:
      - {id: level, node_type: AudioLevelNod}
      - {id: a, node_type: PassThrough}
      - {id: b, node_type: PassThrough}
    connections:
      - {from: a, to: b}
      - {from: b, to: a}
";
    let out = apply(ns, yaml);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a broken Pipeline was accepted");
    assert!(stderr.contains("denied the request"), "{stderr}");
    for expected in ["AudioLevelNod", "level", "cycle"] {
        assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
    }
    let api: Api<Pipeline> = Api::namespaced(client.clone(), ns);
    assert!(
        api.get_opt("broken").await.expect("get").is_none(),
        "stored"
    );
}

fn patch_pipeline(ns: &str, patch_type: &str, patch: &str) {
    run(kubectl().args([
        "patch", "pipeline", NAME, "-n", ns, "--type", patch_type, "-p", patch,
    ]));
}

/// Waits until the Pipeline is Ready with `replicas` ready pods of its current manifest.
async fn wait_replicas(client: &Client, ns: &str, replicas: i32) -> Pipeline {
    let api: Api<Pipeline> = Api::namespaced(client.clone(), ns);
    let ready = pipeline_ready();
    wait_for(
        &api,
        NAME,
        "ready with all replicas",
        move |p: Option<&Pipeline>| {
            ready.matches_object(p)
                && p.and_then(|p| p.status.as_ref())
                    .is_some_and(|s| s.ready_replicas == replicas && s.replicas == replicas)
        },
    )
    .await
}

/// The Pipeline's children of type `K` (by the label the operator puts on all of them).
async fn children<K>(client: &Client, ns: &str) -> Vec<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    Api::<K>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .unwrap_or_else(|e| panic!("list {}s: {e}", K::kind(&())))
        .items
}

/// The Pipeline's pods that are not being deleted.
async fn live_pods(client: &Client, ns: &str) -> Vec<Pod> {
    children::<Pod>(client, ns)
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

pub async fn scale(client: &Client, ns: &str, replicas: i32) {
    patch_pipeline(
        ns,
        "merge",
        &format!(r#"{{"spec":{{"replicas":{replicas}}}}}"#),
    );
    wait_replicas(client, ns, replicas).await;
    assert_eq!(live_pods(client, ns).await.len(), replicas as usize);
}

/// Changing the manifest rolls the pods; a session opened before keeps being served by its
/// (draining) pod through the whole rollout, loses nothing and closes normally; new sessions
/// get the new manifest; the old pods then go away.
pub async fn rollout_drains_open_sessions(client: &Client, ns: &str) {
    let reach = serving_addr(client, ns, "audio-health-grpc").await;
    let (mut session, ready) = OpenSession::open(reach.addr).await;
    assert!(
        ready.manifest_json.contains("-30"),
        "{}",
        ready.manifest_json
    );
    session.round().await;
    let old_pods: Vec<String> = live_pods(client, ns)
        .await
        .iter()
        .map(ResourceExt::name_any)
        .collect();

    // Node 1 is `level`: -30 dB -> -35 dB.
    patch_pipeline(
        ns,
        "json",
        r#"[{"op":"replace","path":"/spec/manifest/nodes/1/params/low_volume_threshold_db","value":-35}]"#,
    );
    let api: Api<Pipeline> = Api::namespaced(client.clone(), ns);
    let rolled = async {
        loop {
            let pods = live_pods(client, ns).await;
            let fresh = pods.iter().all(|p| !old_pods.contains(&p.name_any()));
            let pipeline = api.get(NAME).await.expect("get pipeline");
            let ready = pipeline
                .status
                .as_ref()
                .is_some_and(|s| s.ready_replicas == 2);
            if fresh && ready && pipeline_ready().matches_object(Some(&pipeline)) {
                return;
            }
            // The open session keeps streaming while the pods roll (a frame per 100 ms).
            session.round().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(WAIT, rolled)
        .await
        .expect("the rollout finished in time");
    session.round().await;
    terminating_pods_refuse_new_sessions(client, ns, &old_pods).await;
    session.round().await;
    let sent = session.sent;
    let reason = session.finish().await;
    assert_eq!(
        reason, "completed",
        "after {sent} frames across the rollout"
    );

    // Reached afresh: a port-forward (kind) was pinned to a pod that is now gone.
    let reach = serving_addr(client, ns, "audio-health-grpc").await;
    let (fresh, ready) = OpenSession::open(reach.addr).await;
    assert!(
        ready.manifest_json.contains("-35"),
        "{}",
        ready.manifest_json
    );
    assert_eq!(fresh.finish().await, "completed");

    // The drained pods exit once their last session is gone, before the drain deadline.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for name in &old_pods {
        wait_gone(&pods, name).await;
    }
}

/// The old pods still terminating (at least the one draining the test's open session) answer
/// a new session with UNAVAILABLE, which clients retry elsewhere: reached directly, as a
/// connection kube-proxy still routes there during the endpoint removal would, none of them
/// opens it (it would run the old manifest).
async fn terminating_pods_refuse_new_sessions(client: &Client, ns: &str, old_pods: &[String]) {
    let port = Api::<Pipeline>::namespaced(client.clone(), ns)
        .get(NAME)
        .await
        .expect("get pipeline")
        .spec
        .transports
        .grpc
        .port;
    let terminating: Vec<String> = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .map(|p| p.name_any())
        .filter(|name| old_pods.contains(name))
        .collect();
    let mut refused = 0;
    for pod in &terminating {
        let reach = pod_addr(client, ns, pod, port).await;
        match OpenSession::try_open(reach.addr).await {
            Ok((_, ready)) => panic!(
                "terminating pod {pod} opened a new session running {}",
                ready.manifest_json
            ),
            Err(e) if e.contains("Unavailable") => refused += 1,
            // A pod with no session left may already have closed its port after the linger.
            Err(e) => eprintln!("    terminating pod {pod}: {e}"),
        }
    }
    assert!(
        refused > 0,
        "no terminating pod refused with UNAVAILABLE (terminating: {terminating:?})"
    );
    eprintln!(
        "    {refused} of {} terminating pods refused a new session with UNAVAILABLE",
        terminating.len()
    );
}

/// Kills the runtime container through the node's CRI; the kubelet restarts it and the pod
/// serves streams again.
pub async fn runtime_container_restarts(client: &Client, ns: &str, wav: &Path, frames: usize) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod = live_pods(client, ns).await.remove(0);
    let name = pod.name_any();
    let restarts = |pod: &Pod| {
        let status = pod.status.as_ref();
        status
            .into_iter()
            .flat_map(|s| {
                s.init_container_statuses
                    .iter()
                    .flatten()
                    .chain(s.container_statuses.iter().flatten())
            })
            .find(|c| c.name == "runtime")
            .map(|c| (c.restart_count, c.container_id.clone().unwrap_or_default()))
    };
    let (before, id) = restarts(&pod).expect("a runtime container");
    let id = id.rsplit("://").next().expect("a container id").to_owned();
    crictl(&["stop", "--timeout", "0", &id]);
    wait_for(
        &pods,
        &name,
        "restarted and Ready",
        move |p: Option<&Pod>| {
            p.is_some_and(|p| {
                restarts(p).is_some_and(|(n, _)| n > before)
                    && p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
        },
    )
    .await;
    // Straight to the restarted pod: the Service might pick the other replica.
    let reach = pod_addr(client, ns, &name, 50051).await;
    let lines = python_stream(reach.addr, wav);
    assert_eq!(lines.last().expect("lines")["closed"], "completed");
    let levels = lines.iter().filter(|l| l["node_id"] == "level").count();
    assert_eq!(levels, frames.div_ceil(4_800));
}

/// crictl on the node: env `REMOTEMEDIA_NODE_CRICTL` is the command line (for the local
/// cluster, crictl with its runtime endpoint; for kind, `docker exec <node> crictl`).
fn crictl(args: &[&str]) {
    let line = std::env::var("REMOTEMEDIA_NODE_CRICTL")
        .expect("REMOTEMEDIA_NODE_CRICTL names the node's crictl (make test sets it)");
    let mut words = line.split_whitespace();
    let mut command = std::process::Command::new(words.next().expect("a command"));
    command.args(words).args(args);
    run(&mut command);
}

/// Resource versions of the Pipeline's children: any write changes one.
async fn children_versions(client: &Client, ns: &str) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    versions.extend(versions_of::<Deployment>(client, ns).await);
    versions.extend(versions_of::<Service>(client, ns).await);
    versions.extend(versions_of::<ConfigMap>(client, ns).await);
    versions
}

/// "kind/name" -> resourceVersion of the Pipeline's children of type `K`.
async fn versions_of<K>(client: &Client, ns: &str) -> Vec<(String, String)>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let kind = K::kind(&()).to_lowercase();
    children::<K>(client, ns)
        .await
        .iter()
        .map(|o| {
            (
                format!("{kind}/{}", o.name_any()),
                o.resource_version().unwrap_or_default(),
            )
        })
        .collect()
}

/// Successful reconciles the operator pod `pod` reports on /metrics (through the apiserver's
/// pod proxy, which works on any cluster).
fn reconciles_ok(pod: &str) -> Option<f64> {
    let out = output(kubectl().args([
        "get",
        "--raw",
        &format!("/api/v1/namespaces/{OPERATOR_NS}/pods/{pod}:8080/proxy/metrics"),
    ]));
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines()
        .find(|l| {
            l.starts_with("remotemedia_operator_reconciles_total") && l.contains("result=\"ok\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A restarted operator reconciles the Pipeline again and writes nothing: every child keeps
/// its resource version.
pub async fn operator_restart_changes_nothing(client: &Client, ns: &str) {
    wait_replicas(client, ns, 2).await;
    let before = children_versions(client, ns).await;
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    let deployment = run(kubectl().args([
        "get",
        "deployment",
        "-n",
        OPERATOR_NS,
        "-l",
        &selector,
        "-o",
        "name",
    ]));
    run(kubectl().args(["rollout", "restart", "-n", OPERATOR_NS, deployment.trim()]));
    run(kubectl().args([
        "rollout",
        "status",
        "-n",
        OPERATOR_NS,
        deployment.trim(),
        "--timeout=180s",
    ]));
    let operators = Api::<Pod>::namespaced(client.clone(), OPERATOR_NS)
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("operator pods");
    let pod = operators
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0))
        .expect("a new operator pod")
        .name_any();
    eventually("reconciled by the new operator", || {
        reconciles_ok(&pod).filter(|n| *n >= 1.0)
    })
    .await;
    let after = children_versions(client, ns).await;
    assert_eq!(before, after, "the restarted operator rewrote children");
    // And the Pipeline still reports all replicas ready under the new operator.
    wait_replicas(client, ns, 2).await;
}

/// Deleting the Pipeline leaves nothing: the garbage collector removes every child.
pub async fn delete_collects_children(client: &Client, ns: &str) {
    run(kubectl().args(["delete", "pipeline", NAME, "-n", ns, "--wait=true"]));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    wait_gone(&deployments, NAME).await;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    wait_gone(&services, "audio-health-grpc").await;
    let deadline = Instant::now() + WAIT;
    loop {
        let left =
            children::<ConfigMap>(client, ns).await.len() + children::<Pod>(client, ns).await.len();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} children left after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
