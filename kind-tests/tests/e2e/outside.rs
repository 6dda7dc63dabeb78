//! WebRTC from outside the cluster: the chart's TURN relay (coturn) on a NodePort, a
//! 2-replica Pipeline with https WHIP on a NodePort, tokens, and TURN credentials minted per
//! client; clients run in a network namespace that routes to the node's address only (no pod
//! or Service IP), with a relay-only ICE policy: aiortc over TURN/UDP, aiortc with the
//! namespace's UDP dropped (TURN over TLS), headless Chromium on the demo page. Then: a DELETE
//! that lands on the replica that does not own the session reaches the one that does, and the
//! relay refuses expired credentials.

use std::net::Ipv4Addr;
use std::path::Path;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::ListParams;
use kube::{Api, Client};
use remotemedia_server::test_pki::TestCa;
use serde_json::Value;

use crate::netns::Outside;
use crate::stream::remove_pipeline;
use crate::support::{
    OPERATOR_NS, RELEASE, apply_until_ready, create_tls_secret, eventually, helm, kubectl, output,
    python, repo, run,
};

const NAME: &str = "voice-outside";
const TOKEN: &str = "outside-token";
/// The cluster's pod network (kind-tests/lib/node.sh), the only peers the relay may reach.
const POD_RANGE: &str = "10.88.0.0-10.88.255.255";

fn pipeline_yaml(node: Ipv4Addr, udp: i32, tls: i32) -> String {
    format!(
        r"apiVersion: remotemedia.dev/v1alpha1
kind: Pipeline
metadata:
  name: {NAME}
spec:
  replicas: 2
  transports:
    grpc: {{ enabled: false }}
    webrtc:
      enabled: true
      serviceType: NodePort
      tlsSecret: {NAME}-cert
      tokenSecret: {NAME}-token
      iceServers:
        - urls:
            - turn:{node}:{udp}?transport=udp
            - turns:{node}:{tls}?transport=tcp
          ephemeralCredentials: {{ secretName: {NAME}-turn, ttlSeconds: 600 }}
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

pub async fn clients_outside_reach_pods_through_the_relay(client: &Client, ns: &str, dir: &Path) {
    let node = node_address(client).await;
    let ca = TestCa::new("RemoteMedia e2e outside CA");
    let whip_name = format!("{NAME}-webrtc.{ns}.svc");
    let node_text = node.to_string();
    let relay_dir = dir.join("relay");
    let whip_dir = dir.join("whip");
    for d in [&relay_dir, &whip_dir] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let relay_files = ca.write_server_files(&relay_dir, &[&node_text]);
    let whip_files = ca.write_server_files(&whip_dir, &[&node_text, &whip_name]);
    let ca_file = whip_dir.join("ca.crt");
    let secret_file = dir.join("turn-secret");
    std::fs::write(&secret_file, random_hex()).expect("secret");

    // The relay, from the chart, sharing its secret with the Pipeline's Secret.
    let secret_arg = format!("--from-file=secret={}", secret_file.display());
    delete_relay_secrets(true);
    run(kubectl()
        .args([
            "create",
            "secret",
            "generic",
            "turn-auth",
            "-n",
            OPERATOR_NS,
        ])
        .arg(&secret_arg));
    create_tls_secret("turn-cert", OPERATOR_NS, &relay_files);
    let peers = format!("turn.allowedPeerRanges={{{POD_RANGE}}}");
    upgrade_chart(&[
        "turn.enabled=true",
        "turn.authSecret=turn-auth",
        "turn.tlsSecret=turn-cert",
        "turn.service.type=NodePort",
        &peers,
    ]);
    let relay = format!("{RELEASE}-turn");
    let (udp, tls_port) = (
        node_port(client, OPERATOR_NS, &relay, "turn-udp").await,
        node_port(client, OPERATOR_NS, &relay, "turn-tls").await,
    );

    // The Pipeline: 2 replicas, https WHIP on a NodePort, tokens, minted TURN credentials.
    run(kubectl()
        .args([
            "create",
            "secret",
            "generic",
            &format!("{NAME}-turn"),
            "-n",
            ns,
        ])
        .arg(&secret_arg));
    run(kubectl()
        .args([
            "create",
            "secret",
            "generic",
            &format!("{NAME}-token"),
            "-n",
            ns,
        ])
        .arg(format!("--from-literal=token={TOKEN}")));
    create_tls_secret(&format!("{NAME}-cert"), ns, &whip_files);
    let pipeline = apply_until_ready(client, ns, &pipeline_yaml(node, udp, tls_port), NAME).await;
    let endpoints = pipeline
        .status
        .and_then(|s| s.endpoints)
        .expect("status.endpoints");
    let turn_udp = format!("turn:{node}:{udp}?transport=udp");
    let turn_tls = format!("turns:{node}:{tls_port}?transport=tcp");
    assert_eq!(endpoints.ice_servers, [turn_udp.clone(), turn_tls.clone()]);
    let whip_port = node_port(client, ns, &format!("{NAME}-webrtc"), "http").await;
    let whip = format!("https://{node}:{whip_port}/whip");

    let outside = Outside::create(&[node]);
    let pod_ip = pod_ips(client, ns).await[0].clone();
    assert!(
        !outside.routes_to(&pod_ip),
        "the client namespace must not reach pod {pod_ip}"
    );

    // The relay answers from outside once kube-proxy has its new NodePorts.
    let relay_udp = format!("{node}:{udp}");
    eventually("a TURN allocation from outside", || {
        let probe = turn_probe(&outside, &relay_udp, &secret_file, 600, None);
        (probe["allocated"] == true).then_some(())
    })
    .await;

    // aiortc, relay only, over TURN/UDP.
    let speech = dir.join("speech.wav");
    run(python()
        .arg(repo().join("examples/audio/make_speech.py"))
        .arg(&speech));
    let session = |turn: &str| outside_session(&outside, &whip, &ca_file, &speech, turn);
    let summary = eventually("a relayed session from outside (TURN/UDP)", || {
        session("udp")
    })
    .await;
    check_relayed(&summary, &turn_udp);

    // Headless Chromium on the demo page over https, relay only ("?relay=1"), with the token.
    let page = chromium_session(
        &outside,
        &format!("https://{node}:{whip_port}/?relay=1"),
        &speech,
        &whip_files.cert,
    );
    assert_eq!(page["candidateType"], "relay", "{page}");
    assert_eq!(
        page["iceServers"],
        serde_json::json!([turn_udp, turn_tls]),
        "{page}"
    );
    assert_eq!(page["nodes"], serde_json::json!(["level"]), "{page}");
    assert_eq!(page["deleteStatus"], 200, "{page}");

    // The same with the namespace's UDP dropped: TURN over TLS on the relay's TCP port.
    outside.block_udp();
    let probe = turn_probe(&outside, &relay_udp, &secret_file, 600, None);
    assert_eq!(probe["allocated"], false, "UDP is blocked: {probe}");
    let summary = eventually("a relayed session from outside (TURN/TLS)", || {
        session("tls")
    })
    .await;
    check_relayed(&summary, &turn_tls);

    // Expired credentials: refused by the relay (fresh ones pass, so the refusal is theirs).
    let relay_tls = format!("{node}:{tls_port}");
    let relay_ca = relay_dir.join("ca.crt");
    let fresh = turn_probe(&outside, &relay_tls, &secret_file, 600, Some(&relay_ca));
    assert_eq!(fresh["allocated"], true, "{fresh}");
    let expired = turn_probe(&outside, &relay_tls, &secret_file, -60, Some(&relay_ca));
    assert_eq!(expired["allocated"], false, "{expired}");
    assert!(
        expired["error"].as_str().unwrap_or("").contains("401"),
        "{expired}"
    );
    drop(outside);

    delete_reaches_the_owner(client, ns, &whip_name, &ca_file).await;

    remove_pipeline(client, ns, NAME).await;
    upgrade_chart(&["turn.enabled=false"]);
    delete_relay_secrets(false);
}

/// `helm upgrade` of the suite's release keeping its values but `sets`.
fn upgrade_chart(sets: &[&str]) {
    let mut command = helm();
    command
        .args(["upgrade", RELEASE])
        .arg(repo().join("charts/remotemedia-operator"))
        .args(["--namespace", OPERATOR_NS, "--reuse-values", "--wait"])
        .args(["--timeout", "3m"]);
    for set in sets {
        command.args(["--set", set]);
    }
    run(&mut command);
}

/// The relay's Secrets in the operator's namespace (`missing_ok`: left by a run that failed
/// half-way, if any).
fn delete_relay_secrets(missing_ok: bool) {
    let mut command = kubectl();
    command.args([
        "delete",
        "secret",
        "turn-auth",
        "turn-cert",
        "-n",
        OPERATOR_NS,
    ]);
    if missing_ok {
        command.arg("--ignore-not-found");
    }
    run(&mut command);
}

/// One aiortc session from the namespace: ICE servers from OPTIONS (with the token), relay
/// candidates only, over `turn` ("udp" or "tls"); its summary once answered.
fn outside_session(
    outside: &Outside,
    whip: &str,
    ca: &Path,
    speech: &Path,
    turn: &str,
) -> Option<Value> {
    let out = output(
        outside
            .exec(python().get_program())
            .arg(repo().join("transports/webrtc/tests/clients/whip_client.py"))
            .arg(whip)
            .args(["--ice-from-options", "--relay-only", "--turn", turn])
            .args([
                "--token",
                TOKEN,
                "--seconds",
                "3",
                "--connect-timeout",
                "20",
            ])
            .arg("--ca")
            .arg(ca)
            .arg("--wav")
            .arg(speech),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last()?).ok()?;
    if summary["status"] != 201 {
        eprintln!(
            "    not yet: {summary} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(summary)
}

/// transports/webrtc/tests/browser/demo_page.cjs from the namespace: headless Chromium on the
/// demo page `page`, `speech` as its microphone, the WHIP certificate trusted by its key.
fn chromium_session(outside: &Outside, page: &str, speech: &Path, cert: &Path) -> Value {
    let node_modules = std::env::var_os("REMOTEMEDIA_NODE_MODULES")
        .expect("REMOTEMEDIA_NODE_MODULES (scripts/browser-tools.sh; make test sets it)");
    let out = output(
        outside
            .exec("node")
            .arg(repo().join("transports/webrtc/tests/browser/demo_page.cjs"))
            .arg(page)
            .arg(speech)
            .args(["10", "60"])
            .env("NODE_PATH", node_modules)
            .env("TOKEN", TOKEN)
            .env("TRUST_CERT", cert),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the demo page from outside: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("a JSON summary")
}

fn check_relayed(summary: &Value, turn_url: &str) {
    println!(
        "    relayed by {turn_url}: connected in {} ms, answer {} ms, {} events, rms {}",
        summary["connect_ms"], summary["answer_ms"], summary["events"], summary["audio_rms"]
    );
    assert_eq!(summary["connection"], "connected", "{summary}");
    assert_eq!(
        summary["offer_candidate_types"],
        serde_json::json!(["relay"]),
        "{summary}"
    );
    assert_eq!(
        summary["ice_servers"],
        serde_json::json!([turn_url]),
        "{summary}"
    );
    assert!(summary["events"].as_u64().unwrap_or(0) >= 10, "{summary}");
    assert_eq!(
        summary["event_nodes"],
        serde_json::json!(["level"]),
        "{summary}"
    );
    assert!(
        summary["audio_rms"].as_f64().unwrap_or(0.0) > 0.02,
        "speech came back: {summary}"
    );
    assert_eq!(summary["delete_status"], 200, "{summary}");
}

/// transports/webrtc/tests/clients/turn_probe.py from the namespace: an allocation with
/// credentials that expire `expires_in` seconds from now, over TLS when `ca` is given.
fn turn_probe(
    outside: &Outside,
    server: &str,
    secret: &Path,
    expires_in: i64,
    ca: Option<&Path>,
) -> Value {
    let mut command = outside.exec(python().get_program());
    command
        .arg(repo().join("transports/webrtc/tests/clients/turn_probe.py"))
        .arg(server)
        .arg("--secret-file")
        .arg(secret)
        .args(["--expires-in", &expires_in.to_string(), "--timeout", "5"]);
    if let Some(ca) = ca {
        command.arg("--tls").arg("--ca").arg(ca);
    }
    serde_json::from_str(run(&mut command).trim()).expect("turn_probe.py prints JSON")
}

/// Sessions opened through the Service land on either replica; a DELETE sent to the replica
/// that does not own one is forwarded to the one that does (its session ends "deleted"
/// there), and a second DELETE finds nothing. From this machine, which reaches pod IPs.
async fn delete_reaches_the_owner(client: &Client, ns: &str, name: &str, ca: &Path) {
    let pods = pod_ips(client, ns).await;
    assert_eq!(pods.len(), 2, "{pods:?}");
    let offer = run(python()
        .arg(repo().join("transports/webrtc/tests/clients/whip_client.py"))
        .args(["http://unused/whip", "--print-offer"]));
    let https = |pod: &str, method: &str, path: &str, body: Option<&str>| {
        let mut command = std::process::Command::new("curl");
        command
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"])
            .arg("--cacert")
            .arg(ca)
            .args(["--connect-to", &format!("{name}:8080:{pod}:8080")])
            .args(["-X", method])
            .args(["-H", &format!("authorization: Bearer {TOKEN}")]);
        if let Some(body) = body {
            command
                .args(["-H", "content-type: application/sdp", "-D", "-"])
                .args(["--data-binary", body]);
        }
        let out = run(command.arg(format!("https://{name}:8080{path}")));
        let (text, code) = out.rsplit_once('\n').expect("a status line");
        (
            code.trim().parse::<u16>().expect("a status"),
            text.to_owned(),
        )
    };
    let metric = |pod: &str, series: &str| -> f64 {
        let (_, text) = https(pod, "GET", "/metrics", None);
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let deleted = "remotemedia_webrtc_sessions_ended_total{reason=\"deleted\"}";
    let forwarded = "remotemedia_webrtc_forwarded_total{outcome=\"answered\"}";
    let open = "remotemedia_webrtc_open_sessions";
    // One session on each replica, each deleted through the other.
    for (owner, other) in [(&pods[0], &pods[1]), (&pods[1], &pods[0])] {
        let (status, head) = https(owner, "POST", "/whip", Some(&offer));
        assert_eq!(status, 201, "{head}");
        let location = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("location")
                    .then(|| v.trim().to_owned())
            })
            .expect("a Location");
        assert_eq!(metric(owner, open), 1.0, "{owner} holds the session");
        let (deleted_before, forwarded_before) = (metric(owner, deleted), metric(other, forwarded));
        let (status, body) = https(other, "DELETE", &location, None);
        assert_eq!(status, 200, "DELETE {location} via {other}: {body}");
        assert_eq!(
            metric(owner, deleted),
            deleted_before + 1.0,
            "ended on {owner}"
        );
        assert_eq!(
            metric(other, forwarded),
            forwarded_before + 1.0,
            "forwarded by {other}"
        );
        let (again, _) = https(other, "DELETE", &location, None);
        assert_eq!(again, 404, "a second DELETE of {location}");
        assert_eq!(metric(owner, open), 0.0);
    }
}

async fn node_address(client: &Client) -> Ipv4Addr {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("nodes");
    nodes.items[0]
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
        .and_then(|a| a.address.parse().ok())
        .expect("the node's InternalIP (IPv4)")
}

async fn node_port(client: &Client, ns: &str, service: &str, port: &str) -> i32 {
    let service = Api::<Service>::namespaced(client.clone(), ns)
        .get(service)
        .await
        .expect("service");
    service
        .spec
        .and_then(|s| s.ports)
        .and_then(|ports| ports.into_iter().find(|p| p.name.as_deref() == Some(port)))
        .and_then(|p| p.node_port)
        .unwrap_or_else(|| panic!("no node port {port}"))
}

async fn pod_ips(client: &Client, ns: &str) -> Vec<String> {
    let selector = ListParams::default().labels(&format!("app.kubernetes.io/instance={NAME}"));
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&selector)
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter_map(|p| p.status?.pod_ip)
        .collect()
}

/// 128 random bits as hex: the relay's shared secret.
fn random_hex() -> String {
    let mut file = std::fs::File::open("/dev/urandom").expect("urandom");
    let mut buf = [0u8; 16];
    std::io::Read::read_exact(&mut file, &mut buf).expect("random bytes");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
