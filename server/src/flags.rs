//! The flags every transport server shares: where its pipeline runs and how it stops.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use remotemedia_runtime_core::PipelineTransport;
use remotemedia_runtime_core::ipc::ClientOptions;
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
    /// This end of the pod link.
    #[command(flatten)]
    pub link: LinkFlags,
}

/// How this process's end of the pod link behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::Args)]
pub struct LinkFlags {
    /// How long a reader of a busy pod-link pipe polls for the next message before it
    /// sleeps, in microseconds; 0 never polls (docs/ipc-design.md).
    #[arg(
        long,
        global = true,
        env = "REMOTEMEDIA_IPC_SPIN_US",
        value_name = "US",
        default_value_t = 50
    )]
    pub ipc_spin_us: u64,
}

impl LinkFlags {
    /// The polling time these flags set.
    #[must_use]
    pub fn spin(&self) -> Duration {
        Duration::from_micros(self.ipc_spin_us)
    }
}

impl SourceFlags {
    /// The transport these flags name; the manifest's warnings are printed to stderr.
    ///
    /// # Errors
    ///
    /// [`BackendError`] ([`crate::main`] exits 1 for an invalid manifest).
    pub fn transport(&self) -> Result<Arc<dyn PipelineTransport>, BackendError> {
        let link_options = ClientOptions {
            spin: self.link.spin(),
            ..ClientOptions::default()
        };
        let (transport, warnings) = backend_from_flags(
            self.manifest.as_deref(),
            self.connect.as_deref(),
            link_options,
        )?;
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

#[cfg(test)]
mod tests {
    use clap::Parser;
    use remotemedia_runtime_core::ipc::pipe::SPIN;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        source: SourceFlags,
    }

    #[test]
    fn the_link_polling_time_is_a_flag_defaulting_to_the_librarys() {
        let cli = Cli::try_parse_from(["x", "--connect", "voice", "--ipc-spin-us", "0"]).unwrap();
        assert_eq!(cli.source.link.spin(), Duration::ZERO);
        if std::env::var_os("REMOTEMEDIA_IPC_SPIN_US").is_none() {
            let cli = Cli::try_parse_from(["x", "--connect", "voice"]).unwrap();
            assert_eq!(cli.source.link.spin(), SPIN);
        }
        assert!(Cli::try_parse_from(["x", "--connect", "voice", "--ipc-spin-us", "-1"]).is_err());
    }
}
