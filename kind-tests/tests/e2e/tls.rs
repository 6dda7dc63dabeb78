//! A Pipeline whose transports serve TLS from `kubernetes.io/tls` Secrets: its pods become
//! ready (the kubelet's probes work with TLS on), its status names `grpcs://` and `https://`
//! endpoints, grpcurl trusting the test CA lists the service through the Service, and aiortc
//! streams over https WHIP.

use kube::Client;
use remotemedia_server::test_pki::TestCa;
use serde_json::Value;

use crate::stream::remove_pipeline;
use crate::support::{
    apply_until_ready, create_tls_secret, eventually, grpcurl, kubectl, output, pod_ips_routable,
    run, service_addr, whip_session,
};

const NAME: &str = "voice-tls";

fn pipeline_yaml() -> String {
    format!(
        r"apiVersion: remotemedia.dev/v1alpha1
kind: Pipeline
metadata:
  name: {NAME}
spec:
  transports:
    grpc: {{ tlsSecret: {NAME}-cert }}
    webrtc: {{ enabled: true, tlsSecret: {NAME}-cert }}
  manifest:
    version: v1
    nodes:
      - {{ id: echo, node_type: PassThrough }}
      - {{ id: window, node_type: AudioChunkerNode, params: {{ chunk_size: 4800 }} }}
      - {{ id: level, node_type: AudioLevelNode }}
    connections:
      - {{ from: window, to: level }}
"
    )
}

pub async fn transports_serve_tls_from_secrets(client: &Client, ns: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let grpc_name = format!("{NAME}-grpc.{ns}.svc");
    let webrtc_name = format!("{NAME}-webrtc.{ns}.svc");
    let ca = TestCa::new("RemoteMedia e2e CA");
    let files = ca.write_server_files(dir.path(), &[&grpc_name, &webrtc_name]);
    let ca_file = dir.path().join("ca.crt");
    create_tls_secret(&format!("{NAME}-cert"), ns, &files);
    let pipeline = apply_until_ready(client, ns, &pipeline_yaml(), NAME).await;
    let endpoints = pipeline
        .status
        .and_then(|s| s.endpoints)
        .expect("status.endpoints");
    assert_eq!(
        endpoints.grpc.as_deref(),
        Some(format!("grpcs://{grpc_name}:50051").as_str())
    );
    assert_eq!(
        endpoints.webrtc.as_deref(),
        Some(format!("https://{webrtc_name}:8080/whip").as_str())
    );

    let grpc = service_addr(client, ns, &format!("{NAME}-grpc")).await;
    let listed = eventually("grpcurl over TLS through the Service", || {
        let out = output(
            grpcurl()
                .arg("-cacert")
                .arg(&ca_file)
                .args(["-servername", &grpc_name, "-max-time", "10"])
                .arg(grpc.addr.to_string())
                .arg("list"),
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .await;
    assert!(
        listed.contains("remotemedia.v1.PipelineService"),
        "{listed}"
    );
    let plain = output(
        grpcurl()
            .args(["-plaintext", "-max-time", "5"])
            .arg(grpc.addr.to_string())
            .arg("list"),
    );
    assert!(!plain.status.success(), "plaintext must not be served");

    if pod_ips_routable() {
        let webrtc = service_addr(client, ns, &format!("{NAME}-webrtc")).await;
        let url = format!("https://{}/whip", webrtc.addr);
        let summary: Value = eventually("an https WHIP session through the Service", || {
            let args = ["--seconds", "2", "--servername", &webrtc_name, "--ca"];
            let mut args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
            args.push(ca_file.as_os_str());
            whip_session(&url, &args)
        })
        .await;
        assert_eq!(summary["connection"], "connected", "{summary}");
        assert!(summary["events"].as_u64().unwrap_or(0) >= 10, "{summary}");
        assert_eq!(summary["delete_status"], 200, "{summary}");
    } else {
        println!("    WebRTC media needs routable pod IPs; https WHIP not tried here");
    }
    remove_pipeline(client, ns, NAME).await;
    run(kubectl().args(["delete", "secret", &format!("{NAME}-cert"), "-n", ns]));
}
