//! Shared setup for the tests against a real control plane (`kind-tests/cluster.sh up
//! control-plane`): a client from `$KUBECONFIG`, a throwaway namespace per test, the operator
//! binary as a real child process, and watch-based waits (no fixed sleeps).

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::process::{Child, Command};

/// Generous: the machine has two cores and the apiserver shares them with the build.
pub const WAIT: Duration = Duration::from_secs(60);

/// A client for the test cluster.
pub async fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "cluster tests need KUBECONFIG (run them through `make test`, which starts the control plane)"
    );
    let client = Client::try_default()
        .await
        .expect("a client from $KUBECONFIG");
    remotemedia_operator::setup::apply_crd(&client)
        .await
        .expect("install the CRD");
    client
}

/// A fresh namespace, deleted when the guard drops.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{}", &uuid_like()[..8]);
        let api: Api<Namespace> = Api::all(client.clone());
        api.create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .expect("create namespace");
        Self {
            name,
            client: client.clone(),
        }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let client = self.client.clone();
        let name = self.name.clone();
        // Best effort: a leftover namespace does not break later runs (names are random).
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async move {
                    let api: Api<Namespace> = Api::all(client);
                    let _ = api.delete(&name, &DeleteParams::background()).await;
                });
            }
        })
        .join()
        .ok();
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:016x}", nanos ^ (u128::from(std::process::id()) << 64))
        .chars()
        .rev()
        .collect()
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The operator binary running as a child process; killed on drop.
pub struct Operator {
    pub child: Child,
    pub metrics_port: u16,
    pub webhook_port: u16,
}

pub struct OperatorOptions<'a> {
    pub namespace: &'a str,
    pub webhook: bool,
    pub webhook_configuration: Option<&'a str>,
    pub leader_elect: bool,
    pub identity: &'a str,
    pub webhook_port: Option<u16>,
    /// More flags for the operator.
    pub extra_args: &'a [&'a str],
}

impl Operator {
    pub async fn start(options: &OperatorOptions<'_>) -> Self {
        let metrics_port = free_port();
        let webhook_port = options.webhook_port.unwrap_or_else(free_port);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_remotemedia-operator"));
        cmd.args(["--namespaces", options.namespace])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .args(["--webhook-listen", &format!("127.0.0.1:{webhook_port}")])
            .args(["--identity", options.identity])
            .args(["--lease-namespace", options.namespace])
            .args([
                "--webhook-secret",
                &format!("{}/remotemedia-webhook-cert", options.namespace),
            ])
            .env("RUST_LOG", "info,remotemedia_operator=debug,kube=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if !options.webhook {
            cmd.arg("--no-webhook");
        }
        if let Some(config) = options.webhook_configuration {
            cmd.args(["--webhook-configuration", config]);
        }
        if options.leader_elect {
            cmd.arg("--leader-elect");
        }
        cmd.args(options.extra_args);
        let child = cmd.spawn().expect("start remotemedia-operator");
        let operator = Self {
            child,
            metrics_port,
            webhook_port,
        };
        operator.wait_ready().await;
        operator
    }

    /// Waits for `/readyz` to answer 200 (polling a local socket: the process's own signal).
    pub async fn wait_ready(&self) {
        let url = format!("http://127.0.0.1:{}/readyz", self.metrics_port);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if http_get(&url).await.is_some_and(|(code, _)| code == 200) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "operator never became ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        http_get(&format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .await
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("operator stops within the timeout after SIGTERM")
            .expect("wait for operator")
    }

    /// SIGKILL: a crash, mid-work.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Minimal HTTP/1.0 GET over a TCP socket, enough for `/readyz` and `/metrics`.
pub async fn http_get(url: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = tokio::net::TcpStream::connect(host).await.ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((code, body))
}

/// Registers the operator's webhook (at `127.0.0.1:port`) for Pipelines in `namespace` only.
/// The operator fills in the caBundle itself.
pub async fn register_webhook(client: &Client, name: &str, namespace: &str, port: u16) {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let config = ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: "pipelines.remotemedia.dev".to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            side_effects: "None".to_owned(),
            failure_policy: Some("Fail".to_owned()),
            timeout_seconds: Some(10),
            client_config: WebhookClientConfig {
                url: Some(format!("https://127.0.0.1:{port}/validate-pipeline")),
                ..WebhookClientConfig::default()
            },
            namespace_selector: Some(LabelSelector {
                match_labels: Some(
                    [(
                        "kubernetes.io/metadata.name".to_owned(),
                        namespace.to_owned(),
                    )]
                    .into(),
                ),
                ..LabelSelector::default()
            }),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec!["remotemedia.dev".to_owned()]),
                api_versions: Some(vec!["v1alpha1".to_owned()]),
                operations: Some(vec!["CREATE".to_owned(), "UPDATE".to_owned()]),
                resources: Some(vec!["pipelines".to_owned()]),
                scope: Some("Namespaced".to_owned()),
            }]),
            ..ValidatingWebhook::default()
        }]),
    };
    let _ = api.delete(name, &DeleteParams::default()).await;
    api.create(&PostParams::default(), &config)
        .await
        .expect("create webhook configuration");
}

pub async fn unregister_webhook(client: &Client, name: &str) {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

/// Waits (by watching) until `name` satisfies `condition`; returns the object.
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, condition: impl Condition<K>) -> K
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    match tokio::time::timeout(WAIT, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(Some(object))) => object,
        Ok(Ok(None)) => panic!("{name}: deleted while waiting for {what}"),
        Ok(Err(e)) => panic!("{name}: watch failed while waiting for {what}: {e}"),
        Err(_) => {
            let last = api.get_opt(name).await.ok().flatten();
            panic!("{name}: timed out waiting for {what}; last seen: {last:#?}")
        }
    }
}

/// Waits until `name` is gone.
pub async fn wait_deleted<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let condition = |obj: Option<&K>| obj.is_none();
    match tokio::time::timeout(WAIT, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("{name}: watch failed while waiting for deletion: {e}"),
        Err(_) => panic!("{name}: still exists after {WAIT:?}"),
    }
}
