//! `remotemedia-grpc`: serves a pipeline over gRPC, in this process (`--manifest`) or as the
//! pod's sidecar in front of the worker (`--connect`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use remotemedia_grpc::auth::BearerAuth;
use remotemedia_grpc::{
    Admission, ConnectionOptions, GrpcService, PipelineTransport, ServiceOptions, pb,
};
use remotemedia_runtime_core::pod::GrpcTimeouts;
use remotemedia_server::{
    DrainFlags, Probes, SourceFlags, TlsFlags, bind, gauge, reloading_tokens, serve_until_drained,
};
use tonic::service::interceptor::InterceptedService;
use tonic_health::ServingStatus;

/// The service name health checks ask about (besides "", the whole server).
const SERVICE_NAME: &str = "remotemedia.v1.PipelineService";
/// Health service name for liveness probes: SERVING as long as the server answers at all.
/// Readiness ("" and [`SERVICE_NAME`]) turns NOT_SERVING while draining or while the worker
/// is unreachable, and a liveness probe on it would kill a sidecar mid-drain, or restart one
/// that cannot fix a missing worker.
const LIVENESS_NAME: &str = "liveness";
/// How often readiness asks the transport whether sessions can be opened (for `--connect`,
/// whether the worker is reachable).
const READY_CHECK: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    remotemedia_server::main(run)
}

/// gRPC server for RemoteMedia pipelines.
#[derive(Debug, Parser)]
#[command(name = "remotemedia-grpc", version, about)]
struct Args {
    #[command(flatten)]
    source: SourceFlags,
    #[command(flatten)]
    drain: DrainFlags,
    #[command(flatten)]
    tls: TlsFlags,
    /// Address to serve gRPC on.
    #[arg(long, default_value = "0.0.0.0:50051")]
    listen: SocketAddr,
    /// Serve Prometheus metrics on http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Let clients send their own manifest instead of using the served pipeline.
    #[arg(long)]
    allow_client_manifests: bool,
    /// Require `authorization: Bearer <token>` with a token listed in this file (one per
    /// line; read again when it changes). Health checks stay open.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Sessions (streams and unary calls) open at once, beyond which RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 1_000)]
    max_sessions: usize,
    /// Largest message accepted or sent, in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    max_message_bytes: usize,
    #[command(flatten)]
    timeouts: TimeoutFlags,
}

/// How the server lets go of clients that stopped talking, reading or answering.
#[derive(Debug, clap::Args)]
struct TimeoutFlags {
    /// End a stream that sends no `open` within this many seconds.
    #[arg(long, default_value_t = GrpcTimeouts::DEFAULT.open_seconds)]
    open_timeout_secs: u32,
    /// End a session whose client sent nothing for this many seconds.
    #[arg(long, default_value_t = GrpcTimeouts::DEFAULT.idle_seconds)]
    idle_timeout_secs: u32,
    /// End a session whose input the pipeline has not taken, or whose responses the client
    /// has not read, for this many seconds.
    #[arg(long, default_value_t = GrpcTimeouts::DEFAULT.stall_seconds)]
    stall_timeout_secs: u32,
    /// Ping a connection (HTTP/2 PING, TCP keepalive) quiet for this many seconds.
    #[arg(long, default_value_t = GrpcTimeouts::DEFAULT.keepalive_seconds)]
    keepalive_secs: u32,
    /// Drop a connection, and its sessions, whose ping goes unanswered this many seconds.
    #[arg(long, default_value_t = GrpcTimeouts::DEFAULT.keepalive_timeout_seconds)]
    keepalive_timeout_secs: u32,
    /// Streams one connection may have open at once.
    #[arg(long, default_value_t = GrpcTimeouts::DEFAULT.max_streams_per_connection)]
    max_streams_per_connection: u32,
}

impl TimeoutFlags {
    fn connections(&self) -> ConnectionOptions {
        ConnectionOptions {
            keepalive_interval: secs(self.keepalive_secs),
            keepalive_timeout: secs(self.keepalive_timeout_secs),
            max_streams_per_connection: self.max_streams_per_connection,
        }
    }
}

fn secs(seconds: u32) -> Duration {
    Duration::from_secs(u64::from(seconds))
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Listening from the start: SIGTERM must drain, never kill, once anyone can see us.
    let stop = remotemedia_runtime_core::shutdown::requested();
    let transport = args.source.transport()?;
    let tokens = reloading_tokens(args.token_file.as_deref())?;
    // Everything but health checks goes through the token check when one is configured.
    let auth = tokens.map_or_else(BearerAuth::allow_all, BearerAuth::new);
    let tls = args.tls.reloading_server_config(&[b"h2"])?;
    let service = GrpcService::new(
        transport.clone(),
        ServiceOptions {
            allow_client_manifests: args.allow_client_manifests,
            max_sessions: args.max_sessions,
            idle_timeout: secs(args.timeouts.idle_timeout_secs),
            open_timeout: secs(args.timeouts.open_timeout_secs),
            stall_timeout: secs(args.timeouts.stall_timeout_secs),
            ..ServiceOptions::default()
        },
    );
    let sessions = service.open_sessions();

    let (health, health_service) = tonic_health::server::health_reporter();
    // Known from the start, NOT_SERVING until the transport is found usable.
    set_health(&health, ServingStatus::NotServing).await;
    health
        .set_service_status(LIVENESS_NAME, ServingStatus::Serving)
        .await;
    tokio::spawn(report_health(
        transport.clone(),
        health.clone(),
        sessions.clone(),
        args.max_sessions,
    ));

    // Both reflection versions: grpcurl speaks v1, older tools (Python grpcio-reflection) only
    // v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let listener = bind(args.listen, "--listen").await?;
    let bound = listener.local_addr()?;
    if let Some(addr) = args.metrics_listen {
        let metrics = bind(addr, "--metrics-listen").await?;
        eprintln!("metrics on http://{}/metrics", metrics.local_addr()?);
        let open = sessions.clone();
        let probes = Probes::new(transport)
            .draining_with(sessions.clone())
            .full_at(args.max_sessions)
            .metrics(move || {
                gauge(
                    "remotemedia_grpc_open_sessions",
                    "Sessions open on this gRPC server.",
                    &[],
                    open.open() as f64,
                )
            });
        tokio::spawn(probes.serve(metrics));
    }

    let connections = args.timeouts.connections();
    let server = connections
        .server()
        .add_service(health_service)
        .add_service(InterceptedService::new(
            service.into_server(args.max_message_bytes),
            auth.clone(),
        ))
        .add_service(InterceptedService::new(reflection_v1, auth.clone()))
        .add_service(InterceptedService::new(reflection_v1alpha, auth));
    let security = if tls.is_some() { ", TLS" } else { "" };
    let incoming = connections.incoming(listener, tls)?;
    // Tests and operators wait for this line.
    eprintln!(
        "serving gRPC on {bound} (pid {}{security})",
        std::process::id()
    );
    serve_until_drained(stop, &sessions, args.drain, |shutdown| {
        server.serve_with_incoming_shutdown(incoming, shutdown)
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The same status for the server as a whole ("") and for the pipeline service: probes ask
/// for either.
async fn set_health(health: &tonic_health::server::HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(SERVICE_NAME, status).await;
}

/// Keeps health in step with the transport: SERVING only while sessions can be opened (the
/// worker is reachable, for `--connect`), the server is not draining and holds fewer than
/// `max` sessions (a full pod stops being a target for new sessions; its open ones go on).
/// The drain and session counts change it at once; reachability is checked every
/// [`READY_CHECK`].
async fn report_health(
    transport: Arc<dyn PipelineTransport>,
    health: tonic_health::server::HealthReporter,
    sessions: Admission,
    max: usize,
) {
    let mut last = ServingStatus::NotServing;
    loop {
        let status = match transport.ready().await {
            Ok(()) if !sessions.is_draining() && sessions.open() < max => ServingStatus::Serving,
            Ok(()) => ServingStatus::NotServing,
            Err(reason) => {
                if last != ServingStatus::NotServing {
                    tracing::warn!(%reason, "not serving");
                }
                ServingStatus::NotServing
            }
        };
        if last != status {
            set_health(&health, status).await;
            last = status;
        }
        tokio::select! {
            () = sessions.draining(), if !sessions.is_draining() => {}
            () = sessions.changed() => {}
            () = tokio::time::sleep(READY_CHECK) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use remotemedia_runtime_core::pod::{GrpcSidecar, Sessions, tls_files, token_file};
    use remotemedia_runtime_core::serve::DrainPolicy;

    use super::*;

    /// The args the operator renders for this container parse here to what it meant: a flag
    /// renamed on one side only fails this test.
    #[test]
    fn parses_the_args_the_operator_renders() {
        let sidecar = GrpcSidecar {
            link: "voice".to_owned(),
            port: 50_052,
            sessions: Sessions {
                max: 7,
                drain_seconds: 120,
                linger_seconds: 5,
            },
            timeouts: GrpcTimeouts {
                open_seconds: 3,
                idle_seconds: 40,
                stall_seconds: 9,
                keepalive_seconds: 25,
                keepalive_timeout_seconds: 7,
                max_streams_per_connection: 11,
            },
            token: true,
            tls: true,
        };
        let argv = std::iter::once("remotemedia-grpc".to_owned()).chain(sidecar.args());
        let args = Args::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("the rendered args do not parse: {e}"));
        assert_eq!(args.source.connect.as_deref(), Some("voice"));
        assert_eq!(args.source.manifest, None);
        assert_eq!(args.listen, "0.0.0.0:50052".parse().unwrap());
        assert_eq!(args.metrics_listen, Some(GrpcSidecar::metrics_listen()));
        assert_eq!(args.max_sessions, 7);
        assert_eq!(args.drain.policy(), DrainPolicy::from_secs(120, 5));
        assert_eq!(args.token_file, Some(token_file()));
        let (cert, key) = tls_files();
        assert_eq!(
            args.tls.files(),
            Some(remotemedia_server::CertificateFiles { cert, key })
        );
        let t = &args.timeouts;
        assert_eq!(
            (
                t.open_timeout_secs,
                t.idle_timeout_secs,
                t.stall_timeout_secs
            ),
            (3, 40, 9)
        );
        assert_eq!(
            t.connections(),
            ConnectionOptions {
                keepalive_interval: Duration::from_secs(25),
                keepalive_timeout: Duration::from_secs(7),
                max_streams_per_connection: 11,
            }
        );

        let without_token = GrpcSidecar {
            token: false,
            tls: false,
            ..sidecar
        };
        let argv = std::iter::once("remotemedia-grpc".to_owned()).chain(without_token.args());
        let args = Args::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("the rendered args do not parse: {e}"));
        assert_eq!(args.token_file, None);
        assert_eq!(args.tls.files(), None);
    }
}
