//! `remotemedia-operator`: runs the Pipeline controller, the admission webhook and the
//! metrics/health endpoints. In a cluster it uses the pod's service account; outside, it reads
//! `$KUBECONFIG` (for development and the integration tests).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use futures::FutureExt;
use kube::Client;
use kube::api::{Api, ListParams};
use remotemedia_operator::controller::{self, Context, Scope};
use remotemedia_operator::crd::Pipeline;
use remotemedia_operator::desired::WorkerImages;
use remotemedia_operator::leader::Election;
use remotemedia_operator::metrics::Metrics;
use remotemedia_operator::server::{self, Readiness};
use remotemedia_operator::webhook;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Turns Pipeline resources into worker pods and Services.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Namespaces to watch, comma-separated; empty watches all.
    #[arg(
        long,
        env = "WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    namespaces: Vec<String>,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_listen: SocketAddr,
    /// Address of the admission webhook (HTTPS).
    #[arg(long, default_value = "0.0.0.0:9443")]
    webhook_listen: SocketAddr,
    /// Do not serve the admission webhook.
    #[arg(long)]
    no_webhook: bool,
    /// Secret (`namespace/name`) holding the webhook certificate, shared by all replicas.
    /// Unset: a certificate made at start and kept in memory.
    #[arg(long, env = "WEBHOOK_SECRET")]
    webhook_secret: Option<String>,
    /// DNS names and IPs the webhook certificate is valid for, comma-separated.
    #[arg(
        long,
        env = "WEBHOOK_NAMES",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1"
    )]
    webhook_names: Vec<String>,
    /// ValidatingWebhookConfiguration whose caBundle the operator keeps current.
    #[arg(long, env = "WEBHOOK_CONFIGURATION")]
    webhook_configuration: Option<String>,
    /// How often each replica checks the webhook certificate in --webhook-secret: one close
    /// to expiry is renewed (by whichever replica gets there first) and every replica serves
    /// the Secret's current certificate from its next check.
    #[arg(long, default_value_t = 3600)]
    webhook_cert_check_secs: u64,
    /// Elect a leader through a Lease, so several replicas are safe.
    #[arg(long)]
    leader_elect: bool,
    /// Namespace of the leader Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, default_value = "remotemedia-operator")]
    lease_name: String,
    /// This replica's name in the Lease and in Events.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Default image of the runtime container.
    #[arg(
        long,
        env = "RUNTIME_IMAGE",
        default_value = "localhost/remotemedia-runtime:dev"
    )]
    runtime_image: String,
    /// Image of the gRPC sidecar.
    #[arg(
        long,
        env = "GRPC_IMAGE",
        default_value = "localhost/remotemedia-grpc:dev"
    )]
    grpc_image: String,
    /// Image of the WebRTC sidecar.
    #[arg(
        long,
        env = "WEBRTC_IMAGE",
        default_value = "localhost/remotemedia-webrtc:dev"
    )]
    webrtc_image: String,
    /// imagePullPolicy of worker containers.
    #[arg(long, env = "IMAGE_PULL_POLICY", default_value = "IfNotPresent")]
    image_pull_policy: String,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Resolves once the stop switch turns on; cloneable, so every server can wait on it.
type Stopped = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();

    let client = Client::try_default()
        .await
        .context("no Kubernetes configuration (in-cluster service account or $KUBECONFIG)")?;
    let namespaces: Vec<String> = args
        .namespaces
        .iter()
        .filter(|n| !n.is_empty())
        .cloned()
        .collect();
    check_crd_and_rbac(&client, namespaces.first()).await?;

    let metrics = Metrics::new();
    let readiness = Arc::new(Readiness::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped: Stopped = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
        .boxed()
        .shared()
    };

    let http = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| format!("bind {}", args.metrics_listen))?;
    tracing::info!(address = %http.local_addr()?, "serving /metrics, /healthz, /readyz");
    let http_task = tokio::spawn(
        axum::serve(http, server::router(metrics.clone(), readiness.clone()))
            .with_graceful_shutdown(stopped.clone())
            .into_future(),
    );
    let webhook_task = if args.no_webhook {
        None
    } else {
        Some(serve_webhook(&args, &client, &metrics, stopped.clone()).await?)
    };

    let images = WorkerImages {
        runtime: args.runtime_image.clone(),
        grpc: args.grpc_image.clone(),
        webrtc: args.webrtc_image.clone(),
        pull_policy: args.image_pull_policy.clone(),
    };
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("remotemedia-operator-{}", std::process::id()));
    let context = Arc::new(Context::new(
        client.clone(),
        images,
        metrics.clone(),
        Some(identity.clone()),
    ));
    let scope = if namespaces.is_empty() {
        Scope::AllNamespaces
    } else {
        Scope::Namespaces(namespaces)
    };

    tokio::spawn(async move {
        remotemedia_runtime_core::shutdown::requested().await;
        tracing::info!("termination signal: shutting down");
        let _ = stop_tx.send(true);
    });

    let exit_error = if args.leader_elect {
        let election = Election::join(
            client.clone(),
            &args.lease_namespace,
            &args.lease_name,
            &identity,
        )
        .await
        .context("joining the leader election")?;
        // A standby serves the webhook, so it is ready too.
        readiness.set(true);
        let stop = (&stop_rx, stopped);
        lead_while_elected(election, &identity, context, scope, &metrics, stop).await
    } else {
        readiness.set(true);
        metrics.set_leader(true);
        controller::run(context, scope, stopped).await;
        None
    };

    readiness.set(false);
    if let Some(task) = webhook_task {
        let _ = task.await;
    }
    let _ = http_task.await;
    if let Some(message) = exit_error {
        bail!(message);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Fails early and clearly when the CRD or the RBAC is missing, instead of a watch error loop.
async fn check_crd_and_rbac(client: &Client, namespace: Option<&String>) -> anyhow::Result<()> {
    let pipelines: Api<Pipeline> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    pipelines
        .list(&ListParams::default().limit(1))
        .await
        .context(
            "cannot list pipelines.remotemedia.dev: is the CRD installed (crds/) and RBAC granted?",
        )?;
    Ok(())
}

/// Serves the admission webhook over HTTPS (its certificate from the shared Secret, or made
/// now) until `stopped`, keeping the webhook configuration's caBundle current.
async fn serve_webhook(
    args: &Args,
    client: &Client,
    metrics: &Arc<Metrics>,
    stopped: Stopped,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let secret = match &args.webhook_secret {
        Some(secret) => {
            let Some((ns, name)) = secret.split_once('/') else {
                bail!("--webhook-secret must be namespace/name, got {secret:?}");
            };
            Some((ns.to_owned(), name.to_owned()))
        }
        None => None,
    };
    let cert = match &secret {
        Some((ns, name)) => {
            webhook::ensure_serving_cert(client, ns, name, &args.webhook_names).await?
        }
        None => webhook::generate_serving_cert(&args.webhook_names)?,
    };
    if let Some(config) = &args.webhook_configuration {
        webhook::inject_ca_bundle(client, config, &cert.ca_bundle()).await?;
    }
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
        cert.cert_pem.clone().into_bytes(),
        cert.key_pem.clone().into_bytes(),
    )
    .await
    .context("loading the webhook certificate")?;
    if let Some(secret) = secret {
        tokio::spawn(keep_webhook_cert_current(
            client.clone(),
            secret,
            args.webhook_names.clone(),
            args.webhook_configuration.clone(),
            (tls.clone(), cert),
            Duration::from_secs(args.webhook_cert_check_secs),
        ));
    }
    let listener = std::net::TcpListener::bind(args.webhook_listen)
        .with_context(|| format!("bind {}", args.webhook_listen))?;
    listener.set_nonblocking(true)?;
    tracing::info!(address = %listener.local_addr()?, path = webhook::VALIDATE_PATH, "serving the admission webhook");
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, tls)?
        .handle(handle.clone())
        .serve(webhook::router(metrics.clone(), args.runtime_image.clone()).into_make_service());
    tokio::spawn(async move {
        stopped.await;
        handle.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    Ok(tokio::spawn(server))
}

/// Every `every`, renews the certificate in `secret` if it is close to expiry (or takes the
/// one another replica renewed), and serves it from then on; the caBundle trusts the new CA
/// and the one it replaced, so replicas that have not reloaded yet stay trusted.
async fn keep_webhook_cert_current(
    client: Client,
    (namespace, name): (String, String),
    names: Vec<String>,
    configuration: Option<String>,
    (tls, mut serving): (axum_server::tls_rustls::RustlsConfig, webhook::ServingCert),
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let current = match webhook::ensure_serving_cert(&client, &namespace, &name, &names).await {
            Ok(cert) => cert,
            Err(e) => {
                tracing::warn!(error = %e, "checking the webhook certificate failed; serving the one loaded");
                continue;
            }
        };
        if current == serving {
            continue;
        }
        if let Some(config) = &configuration
            && let Err(e) = webhook::inject_ca_bundle(&client, config, &current.ca_bundle()).await
        {
            tracing::warn!(error = %e, "updating the webhook caBundle failed; retrying next check");
            continue;
        }
        let reloaded = tls
            .reload_from_pem(
                current.cert_pem.clone().into_bytes(),
                current.key_pem.clone().into_bytes(),
            )
            .await;
        match reloaded {
            Ok(()) => {
                tracing::info!(not_after = %current.not_after, "serving the renewed webhook certificate");
                serving = current;
            }
            Err(e) => tracing::warn!(error = %e, "loading the renewed webhook certificate failed"),
        }
    }
}

/// Waits to lead, runs the controller while leading, then leaves the election. Returns why
/// the process must exit with an error: it lost the lease without being asked to stop.
async fn lead_while_elected(
    mut election: Election,
    identity: &str,
    context: Arc<Context>,
    scope: Scope,
    metrics: &Arc<Metrics>,
    (stop, stopped): (&watch::Receiver<bool>, Stopped),
) -> Option<&'static str> {
    let led = tokio::select! {
        led = election.wait_to_lead() => led,
        () = stopped.clone() => false,
    };
    let mut exit_error = None;
    if led && !*stop.borrow() {
        tracing::info!(%identity, "leading");
        metrics.set_leader(true);
        let mut leader_rx = election.is_leader.clone();
        let lost = async move {
            let _ = leader_rx.wait_for(|l| !*l).await;
        };
        let end = async move {
            tokio::select! {
                () = stopped => {}
                () = lost => {}
            }
        }
        .shared();
        controller::run(context, scope, end).await;
        metrics.set_leader(false);
        if !*election.is_leader.borrow() && !*stop.borrow() {
            exit_error = Some("lost the leader lease; exiting so a fresh process rejoins");
        }
    }
    election.leave().await;
    exit_error
}
