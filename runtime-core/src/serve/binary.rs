//! What every server binary (`remotemedia-runtime serve`, `remotemedia-grpc`,
//! `remotemedia-webrtc`) does the same way, so their `main`s stay short composition roots:
//! logging set-up, the tokio runtime and the exit code ([`main`]), the flags that say where the
//! pipeline runs ([`SourceFlags`]) and how the server stops ([`DrainFlags`]).
//!
//! Behind the `server` feature: it brings clap, anyhow and tracing-subscriber, which library
//! users of the runtime do not need.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::{Admission, BackendError, DrainPolicy, backend_from_flags};
use crate::PipelineTransport;

/// Sets up logging to stderr (`RUST_LOG`, default `warn`). Call once, first.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs a server binary: logging, a multi-thread tokio runtime, then `run(args)`. The exit
/// code is `run`'s own; 1 when the manifest it was given is invalid (its problems printed, one
/// per line); 2 with the error chain for every other failure.
pub fn main<Args, Fut>(args: Args, run: impl FnOnce(Args) -> Fut) -> ExitCode
where
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<BackendError>() {
            Some(BackendError::Manifest(problems)) => {
                eprintln!("{problems}");
                ExitCode::FAILURE
            }
            _ => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}

/// Where a transport server's pipeline runs: `--manifest FILE` in this process, or
/// `--connect NAME`, the worker on that pod link.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct SourceFlags {
    /// Serve this manifest's pipeline in this process.
    #[arg(long, conflicts_with = "connect", required_unless_present = "connect")]
    pub manifest: Option<PathBuf>,
    /// Serve the pipeline of the worker on this iceoryx2 link (the pod's runtime container).
    #[arg(long, value_name = "NAME")]
    pub connect: Option<String>,
}

impl SourceFlags {
    /// The backend these flags name; the manifest's warnings are printed to stderr.
    ///
    /// # Errors
    ///
    /// [`BackendError`] ([`main`] exits 1 for an invalid manifest).
    pub fn backend(&self) -> Result<Arc<dyn PipelineTransport>, BackendError> {
        let (backend, warnings) =
            backend_from_flags(self.manifest.as_deref(), self.connect.as_deref())?;
        for warning in warnings {
            eprintln!("{warning}");
        }
        Ok(backend)
    }
}

/// How a server stops on SIGTERM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::Args)]
pub struct DrainFlags {
    /// On SIGTERM, how many seconds open sessions get to finish before the server exits.
    #[arg(long, default_value_t = 30)]
    pub drain_seconds: u64,
    /// On SIGTERM, keep the port open at least this many seconds, answering new sessions with
    /// a retryable refusal, while the pod's endpoint leaves the load balancers.
    #[arg(long, default_value_t = 0)]
    pub linger_seconds: u64,
}

impl DrainFlags {
    /// The policy [`super::drain`] follows.
    #[must_use]
    pub fn policy(&self) -> DrainPolicy {
        DrainPolicy::from_secs(self.drain_seconds, self.linger_seconds)
    }
}

/// A server's drain on SIGTERM: new sessions are refused from the first moment, a line on
/// stderr says so (tests and operators wait for it), and this resolves once the open sessions
/// have ended and the linger has passed, or at the deadline. Returns the sessions cut.
pub async fn drain(sessions: &Admission, flags: DrainFlags) -> usize {
    sessions.refuse_new();
    let policy = flags.policy();
    eprintln!(
        "draining: refusing new sessions, {} open, waiting up to {:?} (port open for at least {:?})",
        sessions.open(),
        policy.deadline,
        policy.linger,
    );
    super::drain(sessions, policy).await
}
