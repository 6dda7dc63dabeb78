//! The flags every transport server shares: where its pipeline runs and how it stops.

use std::path::PathBuf;
use std::sync::Arc;

use remotemedia_runtime_core::PipelineTransport;
use remotemedia_runtime_core::serve::{BackendError, DrainPolicy, backend_from_flags};

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
    /// The transport these flags name; the manifest's warnings are printed to stderr.
    ///
    /// # Errors
    ///
    /// [`BackendError`] ([`crate::main`] exits 1 for an invalid manifest).
    pub fn transport(&self) -> Result<Arc<dyn PipelineTransport>, BackendError> {
        let (transport, warnings) =
            backend_from_flags(self.manifest.as_deref(), self.connect.as_deref())?;
        for warning in warnings {
            eprintln!("{warning}");
        }
        Ok(transport)
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
    /// The policy [`crate::drain`] follows.
    #[must_use]
    pub fn policy(&self) -> DrainPolicy {
        DrainPolicy::from_secs(self.drain_seconds, self.linger_seconds)
    }
}
