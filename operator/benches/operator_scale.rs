//! Operator benchmark against a real control plane (`make bench-operator` starts one):
//!
//! 1. apply-to-Deployment latency: create a Pipeline, time until a watch sees its Deployment;
//!    baseline in the same run: create a Deployment directly, time until the watch sees it.
//! 2. convergence of 500 Pipelines (all with status for their generation), against creating
//!    500 Deployments directly with the same client concurrency.
//! 3. the operator's resident memory idle and while holding the 500.
//!
//! The operator is the release binary, run as a child process watching one namespace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use remotemedia_operator::crd::Pipeline;
use serde_json::json;

const LATENCY_SAMPLES: usize = 60;
const SCALE: usize = 500;
const CONCURRENCY: usize = 16;

fn pipeline(name: &str) -> Pipeline {
    serde_json::from_value(json!({
        "apiVersion": "remotemedia.dev/v1alpha1", "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"manifest": {"version": "v1", "nodes": [
            {"id": "chunk", "node_type": "AudioChunkerNode", "params": {"chunk_size": 4800}},
            {"id": "level", "node_type": "AudioLevelNode"},
        ], "connections": [{"from": "chunk", "to": "level"}]}},
    }))
    .expect("Pipeline")
}

fn plain_deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "localhost/none:1"}]}},
        },
    }))
    .expect("Deployment")
}

/// Records when a watch first sees each Deployment name; returns once the watch is live.
async fn watch_deployments(api: Api<Deployment>) -> Arc<Mutex<HashMap<String, Instant>>> {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let sink = seen.clone();
    let (live_tx, live_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut live_tx = Some(live_tx);
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Ok(Some(event)) = events.try_next().await {
            match event {
                watcher::Event::InitDone => {
                    if let Some(tx) = live_tx.take() {
                        let _ = tx.send(());
                    }
                }
                watcher::Event::Apply(d) | watcher::Event::InitApply(d) => {
                    sink.lock()
                        .expect("lock")
                        .entry(d.name_any())
                        .or_insert_with(Instant::now);
                }
                _ => {}
            }
        }
    });
    live_rx.await.expect("watch established");
    seen
}

async fn wait_seen(seen: &Mutex<HashMap<String, Instant>>, name: &str) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = seen.lock().expect("lock").get(name) {
            return *t;
        }
        assert!(Instant::now() < deadline, "{name} never appeared");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Polls the operator's `/readyz` (its own readiness signal) until it answers 200.
async fn wait_ready(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").await;
            let mut reply = String::new();
            let _ = s.read_to_string(&mut reply).await;
            if reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "operator never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn create_ns(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns");
    api.create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

#[tokio::main]
async fn main() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("operator_scale needs a cluster: run `make bench-operator`");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default().await.expect("client");
    remotemedia_operator::setup::apply_crd(&client)
        .await
        .expect("install the CRD");
    let tag = std::process::id();
    let (ns_op, ns_base) = (format!("bench-op-{tag}"), format!("bench-base-{tag}"));
    create_ns(&client, &ns_op).await;
    create_ns(&client, &ns_base).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_remotemedia-operator"))
        .args(["--namespaces", &ns_op, "--no-webhook"])
        .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("start operator");
    let pid = operator.id().expect("pid");
    wait_ready(port).await;
    let idle_rss = rss_kib(pid);

    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &ns_op);
    let op_seen = watch_deployments(Api::namespaced(client.clone(), &ns_op)).await;
    let base_deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns_base);
    let base_seen = watch_deployments(base_deployments.clone()).await;

    // 1. Latency, interleaved so both see the same machine load.
    let (mut via_operator, mut direct) = (Vec::new(), Vec::new());
    for i in 0..LATENCY_SAMPLES {
        let name = format!("lat-{i}");
        let start = Instant::now();
        pipelines
            .create(&PostParams::default(), &pipeline(&name))
            .await
            .expect("create Pipeline");
        via_operator.push(wait_seen(&op_seen, &name).await - start);
        let start = Instant::now();
        base_deployments
            .create(&PostParams::default(), &plain_deployment(&name))
            .await
            .expect("create Deployment");
        direct.push(wait_seen(&base_seen, &name).await - start);
    }
    via_operator.sort();
    direct.sort();

    // 2. Convergence of SCALE Pipelines vs SCALE direct Deployments.
    let start = Instant::now();
    stream::iter(0..SCALE)
        .for_each_concurrent(CONCURRENCY, |i| {
            let api = pipelines.clone();
            async move {
                api.create(&PostParams::default(), &pipeline(&format!("scale-{i}")))
                    .await
                    .expect("create Pipeline");
            }
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list = pipelines.list(&Default::default()).await.expect("list");
        let done = list
            .items
            .iter()
            .filter(|p| p.name_any().starts_with("scale-"))
            .filter(|p| {
                p.status.as_ref().and_then(|s| s.observed_generation) == p.metadata.generation
            })
            .count();
        if done == SCALE {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {SCALE} converged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let converge = start.elapsed();
    let held_rss = rss_kib(pid);

    let start = Instant::now();
    stream::iter(0..SCALE)
        .for_each_concurrent(CONCURRENCY, |i| {
            let api = base_deployments.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &plain_deployment(&format!("scale-{i}")),
                )
                .await
                .expect("create Deployment");
            }
        })
        .await;
    for i in 0..SCALE {
        wait_seen(&base_seen, &format!("scale-{i}")).await;
    }
    let direct_scale = start.elapsed();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("apply-to-Deployment latency ({LATENCY_SAMPLES} sequential creates):");
    println!(
        "  via the operator:   p50 {:7.1} ms  p99 {:7.1} ms",
        ms(percentile(&via_operator, 0.5)),
        ms(percentile(&via_operator, 0.99))
    );
    println!(
        "  Deployment direct:  p50 {:7.1} ms  p99 {:7.1} ms",
        ms(percentile(&direct, 0.5)),
        ms(percentile(&direct, 0.99))
    );
    println!(
        "  ratio p50 {:.2}x  p99 {:.2}x",
        ms(percentile(&via_operator, 0.5)) / ms(percentile(&direct, 0.5)),
        ms(percentile(&via_operator, 0.99)) / ms(percentile(&direct, 0.99))
    );
    println!(
        "{SCALE} Pipelines to converge (create + status for their generation), {CONCURRENCY} concurrent creates:"
    );
    println!("  via the operator: {:7.2} s", converge.as_secs_f64());
    println!(
        "  {SCALE} Deployments created directly and seen: {:7.2} s",
        direct_scale.as_secs_f64()
    );
    println!(
        "  ratio {:.2}x",
        converge.as_secs_f64() / direct_scale.as_secs_f64()
    );
    println!("operator resident memory:");
    println!("  idle: {:6.1} MiB", idle_rss as f64 / 1024.0);
    println!(
        "  holding {} Pipelines: {:6.1} MiB",
        SCALE + LATENCY_SAMPLES,
        held_rss as f64 / 1024.0
    );

    drop(operator);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [&ns_op, &ns_base] {
        let _ = namespaces.delete(ns, &DeleteParams::background()).await;
    }
}
