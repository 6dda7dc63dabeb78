//! # remotemedia-server
//!
//! What every RemoteMedia server binary (the worker `remotemedia-runtime serve`,
//! `remotemedia-grpc`, `remotemedia-webrtc`) does the same way, so their `main`s stay short
//! composition roots:
//!
//! * [`main`]: flags, logging, the tokio runtime, exit codes.
//! * [`SourceFlags`] and [`DrainFlags`]: where the pipeline runs (`--manifest` or `--connect`)
//!   and how the server stops.
//! * [`Probes`]: `/metrics`, `/livez` and `/readyz` over HTTP (axum), from the server's
//!   [`PipelineTransport`](remotemedia_runtime_core::PipelineTransport) and its sessions.
//! * [`serve_until_drained`]: run a server until SIGTERM or SIGINT, then drain it: refuse new
//!   sessions, wait for the open ones (a future, no polling), stop.
//! * [`Accepted`]: a listener's connections, plain or TLS ([`TlsFlags`],
//!   [`ReloadingCertificate`]: rustls, the certificate read again when its files change), and
//!   [`keep_reloading`] for files read again while serving (certificates, token lists).
//!
//! Its own crate, beside runtime-core rather than in it, because it serves HTTP: runtime-core
//! depends on no HTTP or transport stack. The worker binary `remotemedia-runtime` (also the
//! local command line: `validate`, `nodes`, `run`) lives here for the same reason: it serves
//! the same probes as the transports, with the same code. The pod link, the Python node
//! processes and session admission stay in runtime-core.

mod accept;
mod flags;
mod probes;
mod process;
mod reload;
mod replica_tls;
mod stop;
#[cfg(feature = "test-pki")]
pub mod test_pki;
mod tls;

pub use accept::{AcceptOptions, Accepted, Connection};
pub use flags::{DrainFlags, LinkFlags, SourceFlags};
pub use probes::{Probes, bind, gauge};
pub use process::{init_tracing, main};
pub use reload::{RELOAD_EVERY, keep_reloading, reloading_tokens};
pub use stop::{Shutdown, drain, serve_until_drained};
pub use tls::{CertificateError, CertificateFiles, ReloadingCertificate, TlsFlags};
