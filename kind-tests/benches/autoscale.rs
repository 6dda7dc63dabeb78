//! `make bench-autoscale` (scripts/bench-autoscale.sh brings the cluster up and loads the
//! images): the autoscaler on the real cluster, each figure beside a baseline from the same run.
//!
//! 1. Time to capacity: from a load step (5 held gRPC sessions on a Pipeline with
//!    `autoscaling {1..3, target 2}`) to 3 Ready pods, and to a new pod taking a new session;
//!    baseline: `kubectl scale` of a Pipeline without autoscaling from 1 to 3, to 3 Ready pods.
//! 2. The operator's cost: its CPU (the kernel's `/proc/PID/schedstat` of the operator process,
//!    which runs on this machine, the cluster's node: nanoseconds, where the process collector's
//!    counter has whole seconds) and the autoscaler's API writes (its counter) over a minute with
//!    5 idle autoscaled Pipelines, against a minute with none.
//!
//! Results go to docs/benchmarks.md by hand.

#![allow(dead_code, unreachable_pub, clippy::print_stdout)]

#[path = "../tests/e2e/install.rs"]
mod install;
#[path = "../tests/e2e/session.rs"]
mod session;
#[path = "../tests/e2e/stream.rs"]
mod stream;
#[path = "../tests/e2e/support.rs"]
mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use remotemedia_operator::crd::Pipeline;
use session::OpenSession;
use support::{OPERATOR_NS, RELEASE, WAIT, apply_until_ready, kubectl, run};
use tokio::sync::oneshot;

const PIPELINES: usize = 5;
const WINDOW: Duration = Duration::from_secs(60);

fn yaml(name: &str, autoscaling: bool) -> String {
    let scaling = if autoscaling {
        "autoscaling: { minReplicas: 1, maxReplicas: 3, targetSessionsPerPod: 2, scaleDownDelaySeconds: 600 }"
    } else {
        "replicas: 1"
    };
    format!(
        "apiVersion: remotemedia.dev/v1alpha1\nkind: Pipeline\nmetadata: {{ name: {name} }}\n\
         spec:\n  {scaling}\n  manifest:\n    version: v1\n    nodes:\n      \
         - {{ id: window, node_type: AudioChunkerNode, params: {{ chunk_size: 4800 }} }}\n      \
         - {{ id: level, node_type: AudioLevelNode }}\n    connections:\n      \
         - {{ from: window, to: level }}\n"
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks; there is nothing to list.
    }
    let client = support::client().await;
    install::operator_chart();
    let namespace = install::Namespace::create("bench-autoscale");
    let ns = namespace.name.as_str();

    println!("Autoscaler benchmark\n");
    for round in 1..=2 {
        let manual = manual_scale(&client, ns, round).await;
        let (ready, taking) = load_step(&client, ns, round).await;
        println!(
            "round {round}: kubectl scale 1 -> 3 Ready (baseline) {:.1} s; 5 sessions -> 3 Ready \
             {:.1} s ({:.2}x); -> a new pod taking a new session {:.1} s",
            manual.as_secs_f64(),
            ready.as_secs_f64(),
            ready.as_secs_f64() / manual.as_secs_f64(),
            taking.as_secs_f64(),
        );
    }

    let idle = operator_window(&client).await;
    for i in 0..PIPELINES {
        apply_until_ready(
            &client,
            ns,
            &yaml(&format!("idle-{i}"), true),
            &format!("idle-{i}"),
        )
        .await;
    }
    // Past the first writes (status, deletion costs) of the new Pipelines.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let busy = operator_window(&client).await;
    let per = |x: f64| x / PIPELINES as f64;
    println!(
        "operator over {}s: CPU {:.3} s with no Pipeline (baseline), {:.3} s with {PIPELINES} \
         idle autoscaled Pipelines: +{:.4} s CPU per Pipeline per minute ({:.2}x); autoscaler \
         API writes {} and {} (+{:.2} per Pipeline per minute)",
        WINDOW.as_secs(),
        idle.0,
        busy.0,
        per(busy.0 - idle.0),
        busy.0 / idle.0,
        idle.1,
        busy.1,
        per(busy.1 - idle.1),
    );
    drop(namespace);
    install::uninstall();
}

/// A Pipeline without autoscaling scaled from 1 to 3 by hand: time to 3 Ready pods.
async fn manual_scale(client: &Client, ns: &str, round: u32) -> Duration {
    let name = format!("manual-{round}");
    apply_until_ready(client, ns, &yaml(&name, false), &name).await;
    let started = Instant::now();
    run(kubectl().args(["scale", "pipeline", &name, "-n", ns, "--replicas=3"]));
    wait_ready_replicas(client, ns, &name, 3).await;
    let took = started.elapsed();
    stream::remove_pipeline(client, ns, &name).await;
    took
}

/// 5 sessions held on an autoscaled Pipeline: time to 3 Ready pods, and until a new session
/// lands on a pod other than the first.
async fn load_step(client: &Client, ns: &str, round: u32) -> (Duration, Duration) {
    let name = format!("auto-{round}");
    apply_until_ready(client, ns, &yaml(&name, true), &name).await;
    let reach = stream::serving_addr(client, ns, &format!("{name}-grpc")).await;
    let started = Instant::now();
    let mut sessions = Vec::new();
    for _ in 0..5 {
        sessions.push(OpenSession::open(reach.addr).await.0);
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let holder = tokio::spawn(hold(sessions, stopped));
    wait_ready_replicas(client, ns, &name, 3).await;
    let ready = started.elapsed();
    let api: Api<Pipeline> = Api::namespaced(client.clone(), ns);
    let mut extra = Vec::new();
    let taking = loop {
        extra.push(OpenSession::open(reach.addr).await.0);
        let status = api
            .get(&name)
            .await
            .expect("get")
            .status
            .unwrap_or_default();
        let busy_pods = status
            .sessions
            .map_or(0, |s| s.pods.iter().filter(|p| p.active > 0).count());
        if busy_pods >= 2 {
            break started.elapsed();
        }
        for session in &mut extra {
            session.round().await;
        }
        assert!(started.elapsed() < WAIT, "no new pod took a session");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let _ = stop.send(());
    for session in holder.await.expect("holder") {
        session.finish().await;
    }
    for session in extra {
        session.finish().await;
    }
    stream::remove_pipeline(client, ns, &name).await;
    (ready, taking)
}

/// Keeps `sessions` streaming (a window each every 100 ms) until `stop`; gives them back.
async fn hold(mut sessions: Vec<OpenSession>, mut stop: oneshot::Receiver<()>) -> Vec<OpenSession> {
    loop {
        for session in &mut sessions {
            session.round().await;
        }
        tokio::select! {
            _ = &mut stop => return sessions,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

async fn wait_ready_replicas(client: &Client, ns: &str, name: &str, want: i32) {
    let api: Api<Pipeline> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + WAIT;
    loop {
        let ready = api
            .get(name)
            .await
            .expect("get")
            .status
            .map_or(0, |s| s.ready_replicas);
        if ready >= want {
            return;
        }
        assert!(Instant::now() < deadline, "{name}: not {want} ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The operator's CPU seconds and the autoscaler's API writes over [`WINDOW`].
async fn operator_window(client: &Client) -> (f64, f64) {
    let before = operator_metrics(client).await;
    tokio::time::sleep(WINDOW).await;
    let after = operator_metrics(client).await;
    (after.0 - before.0, after.1 - before.1)
}

async fn operator_metrics(client: &Client) -> (f64, f64) {
    let pods = Api::<Pod>::namespaced(client.clone(), OPERATOR_NS)
        .list(&ListParams::default().labels(&format!(
            "app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=remotemedia-operator"
        )))
        .await
        .expect("operator pods");
    let ip = pods
        .items
        .iter()
        .find_map(|p| p.status.as_ref()?.pod_ip.clone())
        .expect("the operator's pod IP");
    let page = run(std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://{ip}:8080/metrics")));
    let writes: f64 = page
        .lines()
        .filter(|l| l.starts_with("remotemedia_operator_autoscaler_writes_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    (operator_cpu_seconds(), writes)
}

/// CPU time of the operator process so far, from `/proc/PID/schedstat` (nanoseconds on CPU).
fn operator_cpu_seconds() -> f64 {
    let pid =
        run(std::process::Command::new("pgrep")
            .args(["-f", "^/usr/local/bin/remotemedia-operator"]));
    let pid = pid.lines().next().expect("the operator's process").trim();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).expect("schedstat");
    let nanos: f64 = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("time on CPU");
    nanos / 1e9
}
