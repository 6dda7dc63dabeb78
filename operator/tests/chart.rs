//! The Helm chart against the real control plane: `helm template | kubectl apply`, then the
//! operator binary runs with *only* the chart's ServiceAccount token (not admin), so the chart's
//! least-privilege RBAC is proven sufficient for reconciling, status, events, the webhook
//! certificate, the caBundle and the leader Lease. Needs `REMOTEMEDIA_HELM` and
//! `REMOTEMEDIA_KUBECTL` (set by `make test`).

#![cfg(feature = "cluster-tests")]

mod support;

use std::process::{Command, Stdio};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::PostParams;
use remotemedia_operator::crd::Pipeline;
use remotemedia_operator::status::types;
use serde_json::json;
use support::{TestNamespace, wait_for};

fn tool(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} must name the binary (make test sets it)"))
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_installs_and_its_rbac_is_enough_for_the_operator() {
    let (helm, kubectl) = (tool("REMOTEMEDIA_HELM"), tool("REMOTEMEDIA_KUBECTL"));
    let client = support::client().await;
    let system = TestNamespace::new(&client, "rm-system").await;
    let apps = TestNamespace::new(&client, "rm-apps").await;
    let chart = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/remotemedia-operator"
    );
    let release = format!("r{}", &system.name[10..]);
    let fullname = format!("{release}-remotemedia-operator");

    run(
        &helm,
        &["lint", chart, "--strict", "--kube-version", "1.35.4"],
        None,
    );
    let rendered = run(
        &helm,
        &[
            "template",
            &release,
            chart,
            "--namespace",
            &system.name,
            "--kube-version",
            "1.35.4",
            "--set",
            &format!("watchNamespaces={{{}}}", apps.name),
            "--set",
            "replicaCount=2",
        ],
        None,
    );
    run(
        &kubectl,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&rendered),
    );
    // Without a kubelet the in-cluster operator never runs; the apiserver reaches the
    // out-of-cluster one started below through a URL instead of the Service.
    let webhook_port = support::free_port();
    let patch = json!([{"op": "replace", "path": "/webhooks/0/clientConfig",
        "value": {"url": format!("https://127.0.0.1:{webhook_port}/validate-pipeline")}}]);
    run(
        &kubectl,
        &[
            "patch",
            "validatingwebhookconfiguration",
            &fullname,
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
        None,
    );

    // A kubeconfig holding only the chart's ServiceAccount token.
    let token = run(
        &kubectl,
        &[
            "create",
            "token",
            &fullname,
            "-n",
            &system.name,
            "--duration=1h",
        ],
        None,
    );
    let admin = run(
        &kubectl,
        &["config", "view", "--raw", "--minify", "-o", "json"],
        None,
    );
    let admin: serde_json::Value = serde_json::from_str(&admin).expect("kubeconfig JSON");
    let cluster = &admin["clusters"][0]["cluster"];
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "sa", "user": {"token": token.trim()}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "sa"}}],
        "current-context": "c",
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sa.kubeconfig");
    std::fs::write(&path, kubeconfig.to_string()).expect("write kubeconfig");

    let metrics_port = support::free_port();
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_remotemedia-operator"))
        .env("KUBECONFIG", &path)
        .env("POD_NAMESPACE", &system.name)
        .args([
            "--namespaces",
            &apps.name,
            "--leader-elect",
            "--lease-name",
            &fullname,
        ])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
        .args(["--webhook-listen", &format!("127.0.0.1:{webhook_port}")])
        .args([
            "--webhook-secret",
            &format!("{}/{fullname}-webhook-cert", system.name),
        ])
        .args([
            "--webhook-names",
            "127.0.0.1",
            "--webhook-configuration",
            &fullname,
        ])
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start operator");
    let ready_url = format!("http://127.0.0.1:{metrics_port}/readyz");
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while support::http_get(&ready_url)
        .await
        .is_none_or(|(c, _)| c != 200)
    {
        assert!(
            operator.try_wait().expect("poll").is_none(),
            "operator exited (RBAC too narrow?)"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "operator never ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &apps.name);
    let good: Pipeline = serde_json::from_value(json!({
        "apiVersion": "remotemedia.dev/v1alpha1", "kind": "Pipeline",
        "metadata": {"name": "chart-ok"},
        "spec": {"manifest": {"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]}, "replicas": 2},
    }))
    .expect("Pipeline");
    pipelines
        .create(&PostParams::default(), &good)
        .await
        .expect("admitted through the chart's webhook");
    wait_for(
        &pipelines,
        "chart-ok",
        "reconciled with the chart's RBAC",
        |p: Option<&Pipeline>| {
            p.and_then(|p| p.status.as_ref()).and_then(|s| {
                remotemedia_operator::status::condition_status(s, types::MANIFEST_VALID)
            }) == Some("True")
        },
    )
    .await;
    Api::<Deployment>::namespaced(client.clone(), &apps.name)
        .get("chart-ok")
        .await
        .expect("Deployment created with the chart's RBAC");

    let mut bad = good.clone();
    bad.metadata.name = Some("chart-bad".to_owned());
    bad.spec.manifest.nodes[0].node_type = "Nope".to_owned();
    let err = pipelines
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("denied");
    assert!(err.to_string().contains("node 'a'"), "{err}");

    let (_, metrics) = support::http_get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .expect("metrics");
    assert!(
        !metrics.contains("reconcile_errors_total{"),
        "no failed reconciles: {metrics}"
    );
    assert!(
        metrics.contains("remotemedia_operator_leader 1"),
        "{metrics}"
    );

    let _ = operator.kill().await;
    // Cluster-scoped objects outlive the namespaces: remove them (the CRD is kept: `keep`).
    let cluster_scoped: String = rendered
        .split("\n---")
        .filter(|doc| {
            ["kind: ClusterRole", "kind: ValidatingWebhookConfiguration"]
                .iter()
                .any(|k| doc.contains(k))
        })
        .collect::<Vec<_>>()
        .join("\n---");
    run(
        &kubectl,
        &["delete", "--ignore-not-found", "-f", "-"],
        Some(&cluster_scoped),
    );
}
