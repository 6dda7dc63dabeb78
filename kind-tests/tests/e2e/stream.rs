//! Deploying an example Pipeline and streaming through its gRPC Service with third-party
//! clients.

use std::net::SocketAddr;
use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use remotemedia_operator::crd::Pipeline;
use serde_json::Value;

use crate::support::{
    Reach, WAIT, apply, eventually, grpcurl, kubectl, output, pipeline_ready, pod_ips_routable,
    python_stream, repo, run, service_addr, text, wait_for, wait_gone, whip_session,
};

/// Applies examples/pipelines/`name`.yaml with kubectl and waits until the Pipeline is Ready.
pub async fn deploy_example(client: &Client, ns: &str, name: &str) -> Pipeline {
    let yaml = std::fs::read_to_string(repo().join(format!("examples/pipelines/{name}.yaml")))
        .expect("example pipeline");
    let out = apply(ns, &yaml);
    assert!(
        out.status.success(),
        "kubectl apply {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api: Api<Pipeline> = Api::namespaced(client.clone(), ns);
    wait_for(&api, name, "Ready", pipeline_ready()).await
}

/// `grpcurl -plaintext FLAGS ADDR CALL` (CALL a method, or `list`); its output when it
/// succeeded.
pub fn grpcurl_ok(addr: SocketAddr, flags: &[&str], call: &str) -> Option<String> {
    let out = output(
        grpcurl()
            .args(["-plaintext", "-max-time", "10"])
            .args(flags)
            .arg(addr.to_string())
            .arg(call),
    );
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).expect("utf-8"))
}

/// The Service's address, once its pods answer the health check as SERVING through it.
pub async fn serving_addr(client: &Client, ns: &str, service: &str) -> Reach {
    let reach = service_addr(client, ns, service).await;
    let addr = reach.addr;
    eventually("SERVING through the Service", || {
        grpcurl_ok(
            addr,
            &["-d", r#"{"service":"remotemedia.v1.PipelineService"}"#],
            "grpc.health.v1.Health/Check",
        )
        .filter(|health| health.contains("\"SERVING\""))
    })
    .await;
    reach
}

/// 100 ms of a 440 Hz tone at half scale, 48 kHz mono, as the wire's f32le bytes in base64.
fn tone_base64() -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..4_800)
        .flat_map(|i| {
            let t = f64::from(i) / 48_000.0;
            ((0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as f32).to_le_bytes()
        })
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// grpcurl lists the services by reflection, checks health and makes a unary call; the Python
/// grpcio client streams the WAV and gets one level event per 100 ms window.
pub async fn grpcurl_and_python(client: &Client, ns: &str, wav: &Path, frames: usize) {
    let reach = serving_addr(client, ns, "audio-health-grpc").await;
    let addr = reach.addr;

    let services = grpcurl_ok(addr, &[], "list").expect("grpcurl list");
    for service in [
        "remotemedia.v1.PipelineService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(services.contains(service), "{service} not in:\n{services}");
    }
    let request = format!(
        r#"{{"input":{{"data":{{"audio":{{"samples_f32le":"{}","sample_rate":48000,"channels":1}}}},"sequence":"3"}}}}"#,
        tone_base64()
    );
    let answer = grpcurl_ok(
        addr,
        &["-d", &request],
        "remotemedia.v1.PipelineService/Execute",
    )
    .expect("a unary call through the Service");
    let answer: Value = serde_json::from_str(&answer).expect("JSON from grpcurl");
    let level = answer["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .find(|o| text(o, "/result/nodeId") == "level")
        .unwrap_or_else(|| panic!("no level output in {answer}"));
    let event: Value = serde_json::from_str(&text(level, "/result/item/data/json")).expect("json");
    let rms_db = event["rms_db"].as_f64().expect("rms_db");
    // A sine at half scale: RMS 0.354, -9.0 dBFS.
    assert!((rms_db + 9.03).abs() < 0.1, "rms_db {rms_db} in {event}");
    assert_eq!(text(level, "/result/item/sequence"), "3", "{level}");

    let lines = python_stream(addr, wav);
    assert!(lines[0]["ready"].is_string(), "{:?}", lines[0]);
    assert_eq!(lines.last().expect("lines")["closed"], "completed");
    let levels = lines.iter().filter(|l| l["node_id"] == "level").count();
    assert_eq!(levels, frames.div_ceil(4_800), "{frames} frames");
}

/// voice-echo with its WebRTC sidecar: the Pipeline's status names the WHIP URL; from this
/// machine, aiortc posts its offer through the Service, sends media to the pod's one UDP port
/// (the pod IP the sidecar advertises), and gets its audio and the level events back.
pub async fn webrtc_from_host(client: &Client, ns: &str) {
    let pipeline = deploy_example(client, ns, "voice-echo").await;
    let whip = pipeline
        .status
        .as_ref()
        .and_then(|s| s.endpoints.as_ref())
        .and_then(|e| e.webrtc.clone())
        .expect("status.endpoints.webrtc");
    assert_eq!(whip, format!("http://voice-echo-webrtc.{ns}.svc:8080/whip"));
    if !pod_ips_routable() {
        // kind: the pod's UDP port cannot be port-forwarded (kubectl forwards TCP only).
        println!("    WebRTC media needs routable pod IPs; not on this cluster flavour");
        return;
    }
    let reach = service_addr(client, ns, "voice-echo-webrtc").await;
    let url = format!("http://{}/whip", reach.addr);
    let summary: Value = eventually("a WebRTC session through the Service", || {
        whip_session(&url, &["--seconds".as_ref(), "3".as_ref()])
    })
    .await;
    assert_eq!(summary["connection"], "connected", "{summary}");
    assert!(summary["events"].as_u64().unwrap_or(0) >= 15, "{summary}");
    assert_eq!(
        summary["event_nodes"],
        serde_json::json!(["level"]),
        "{summary}"
    );
    assert!(
        summary["audio_rms"].as_f64().unwrap_or(0.0) > 0.1,
        "audio came back: {summary}"
    );
    assert_eq!(summary["delete_status"], 200, "{summary}");
    remove_pipeline(client, ns, "voice-echo").await;
}

/// Deletes a Pipeline and waits for its pods to go (later steps count the namespace's pods).
pub async fn remove_pipeline(client: &Client, ns: &str, name: &str) {
    run(kubectl().args(["delete", "pipeline", name, "-n", ns, "--wait=true"]));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    wait_gone(&deployments, name).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = ListParams::default().labels(&format!("app.kubernetes.io/instance={name}"));
    let deadline = std::time::Instant::now() + WAIT;
    while !pods
        .list(&selector)
        .await
        .expect("list pods")
        .items
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{name}'s pods still there after {WAIT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
