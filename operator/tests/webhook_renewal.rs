//! The webhook certificate is renewed while the operator runs: two replicas share it through
//! their Secret; once it is close to expiry, one renews it, both serve the new one from their
//! next check, and the apiserver trusts it (the caBundle holds the new CA and the one it
//! replaced). Against the real control plane (`kind-tests/cluster.sh up control-plane`).

#![cfg(feature = "cluster-tests")]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{Timestamp, ToSpan};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use remotemedia_operator::crd::Pipeline;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use support::{Operator, OperatorOptions, TestNamespace, WAIT};

const SECRET: &str = "remotemedia-webhook-cert";

fn key(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
}

/// The certificate the webhook on `port` presents, verified against `ca_pem` for `localhost`
/// (one of the operator's default webhook names); `None` when verification fails.
fn served(port: u16, ca_pem: &str) -> Option<Vec<u8>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.ok()?).ok()?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").ok()?;
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).ok()?;
    }
    let leaf = tls.peer_certificates()?.first()?.to_vec();
    let _ = tcp.write_all(b"");
    let _ = tcp.read(&mut [0; 1]);
    Some(leaf)
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("a PEM certificate")
        .to_vec()
}

/// Polls `check` until it gives `Some`.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {what} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_certificate_is_renewed_while_running_and_every_replica_serves_it() {
    let client = support::client().await;
    let ns = TestNamespace::new(&client, "renew").await;
    let config = format!("remotemedia-test-{}", ns.name);
    let ports = [support::free_port(), support::free_port()];
    support::register_webhook(&client, &config, &ns.name, ports[0]).await;
    let check_every = ["--webhook-cert-check-secs", "1"];
    let mut replicas = Vec::new();
    for (port, identity) in ports.iter().zip(["replica-a", "replica-b"]) {
        replicas.push(
            Operator::start(&OperatorOptions {
                namespace: &ns.name,
                webhook: true,
                webhook_configuration: Some(&config),
                leader_elect: true,
                identity,
                webhook_port: Some(*port),
                extra_args: &check_every,
            })
            .await,
        );
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let first = secrets.get(SECRET).await.expect("the shared Secret");
    let (first_ca, first_cert) = (key(&first, "ca.crt"), key(&first, "tls.crt"));
    for port in ports {
        assert_eq!(
            served(port, &first_ca),
            Some(der(&first_cert)),
            "replica on {port}"
        );
    }

    // Ten days left: inside the renewal window (30 days before expiry).
    let soon = (Timestamp::now() + 240.hours()).to_string();
    let patch = json!({"metadata": {"annotations": {"remotemedia.dev/not-after": soon}}});
    secrets
        .patch(SECRET, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the Secret");

    let deadline = tokio::time::Instant::now() + WAIT;
    let renewed = loop {
        let secret = secrets.get(SECRET).await.expect("the shared Secret");
        if key(&secret, "tls.crt") != first_cert {
            break secret;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not renewed within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (new_ca, new_cert) = (key(&renewed, "ca.crt"), key(&renewed, "tls.crt"));
    assert_eq!(
        key(&renewed, "ca-previous.crt"),
        first_ca,
        "the old CA is kept"
    );
    for port in ports {
        eventually("every replica serving the renewed certificate", || {
            (served(port, &new_ca)? == der(&new_cert)).then_some(())
        })
        .await;
    }
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let bundle = configs
        .get(&config)
        .await
        .expect("webhook configuration")
        .webhooks
        .unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .expect("a caBundle");
    let bundle = String::from_utf8_lossy(&bundle.0).into_owned();
    assert!(
        bundle.contains(&new_ca) && bundle.contains(&first_ca),
        "{bundle}"
    );

    // The apiserver trusts the renewed webhook: an invalid Pipeline is still refused by it.
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &ns.name);
    let bad: Pipeline = serde_json::from_value(json!({
        "apiVersion": "remotemedia.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "bad"},
        "spec": {"manifest": {"version": "v1", "nodes": [{"id": "x", "node_type": "NoSuchNode"}]}},
    }))
    .unwrap();
    let refused = pipelines
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("refused by the webhook");
    assert!(refused.to_string().contains("node 'x'"), "{refused}");
    support::unregister_webhook(&client, &config).await;
    for replica in replicas {
        replica.stop().await;
    }
}
