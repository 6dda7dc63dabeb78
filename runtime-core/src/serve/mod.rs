//! What a transport's server runs sessions on, shared by every server binary (gRPC, WebRTC):
//!
//! * [`backend`]: the [`PipelineTransport`] a server opens sessions on, as its flags say: the
//!   served pipeline in this process (a [`PipelineRunner`] serving it, `--manifest`) or the
//!   pod's worker over the iceoryx2 link (an [`IpcRunner`], `--connect`). Servers do not know
//!   which.
//! * [`Admission`]: how many sessions are open, the limit, and the drain switch flipped on
//!   SIGTERM; each admitted session holds a [`SessionSlot`] until it ends. [`drain`] is how
//!   every server stops: refuse new sessions, wait for the open ones (and the linger).
//! * [`read_manifest_file`]: the `--manifest FILE` a server is started with, checked.
//! * [`Tokens`]: the bearer tokens of `--token-file`.

use std::path::Path;
use std::sync::Arc;

use crate::ipc::pipe::IpcError;
use crate::ipc::{ClientOptions, IpcRunner, LinkName, LinkNameError};
use crate::manifest::{Format, Manifest, Problem, check_document};
use crate::nodes::NodeRegistry;
use crate::{PipelineRunner, PipelineTransport, RunError};

mod admission;
mod tokens;

pub use admission::{Admission, AdmitError, DrainPolicy, SessionSlot, drain};
pub use tokens::{TokenFileError, TokenHolder, TokenRefusal, Tokens};

/// Where a server's pipeline runs, as its command line says: `--manifest FILE` (in this
/// process) or `--connect NAME` (the pod's worker on that iceoryx2 link).
#[derive(Clone, Copy, Debug)]
pub enum ServeFrom<'a> {
    /// Serve this manifest file in-process.
    Manifest(&'a Path),
    /// Serve the worker on this link.
    Link(&'a str),
}

/// Why a server's backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The manifest file is unreadable or invalid (the problems are in the message).
    #[error(transparent)]
    Manifest(#[from] ManifestFileError),
    /// The `--connect` link name is invalid.
    #[error("--connect")]
    LinkName(#[source] LinkNameError),
    /// The link's client could not be created.
    #[error("--connect {link}: the link's client could not be created")]
    Link {
        /// The link.
        link: String,
        /// Why.
        #[source]
        source: IpcError,
    },
    /// The manifest validated but could not be planned (its node types changed meanwhile).
    #[error("--manifest: the pipeline could not be planned")]
    Plan(#[source] RunError),
    /// Neither a manifest nor a link was given.
    #[error("give --manifest FILE or --connect NAME")]
    NoSource,
}

/// The backend a server binary serves, with the manifest's warnings (for `--manifest`) to
/// print. Built-in node types only, as in the worker.
///
/// # Errors
///
/// [`BackendError`].
pub fn backend(
    from: ServeFrom<'_>,
    link_options: ClientOptions,
) -> Result<(Arc<dyn PipelineTransport>, Vec<Problem>), BackendError> {
    let registry = NodeRegistry::with_builtins();
    match from {
        ServeFrom::Manifest(path) => {
            let (manifest, warnings) = read_manifest_file(path, &registry)?;
            let runner = PipelineRunner::with_registry(registry)
                .serving(Arc::new(manifest))
                .map_err(BackendError::Plan)?;
            Ok((Arc::new(runner), warnings))
        }
        ServeFrom::Link(name) => {
            let link = LinkName::new(name).map_err(BackendError::LinkName)?;
            let client =
                IpcRunner::connect(link, link_options).map_err(|source| BackendError::Link {
                    link: name.to_owned(),
                    source,
                })?;
            Ok((Arc::new(client), Vec::new()))
        }
    }
}

/// What a server binary's `--manifest FILE` (which wins when both are given) or
/// `--connect NAME` serves: the backend, and the manifest's warnings as lines to print
/// (`FILE: problem`).
///
/// # Errors
///
/// [`BackendError`]; [`BackendError::NoSource`] when neither flag was given.
pub fn backend_from_flags(
    manifest: Option<&Path>,
    connect: Option<&str>,
    link_options: ClientOptions,
) -> Result<(Arc<dyn PipelineTransport>, Vec<String>), BackendError> {
    match (manifest, connect) {
        (Some(path), _) => {
            let (served, warnings) = backend(ServeFrom::Manifest(path), link_options)?;
            let lines = warnings
                .iter()
                .map(|w| format!("{}: {w}", path.display()))
                .collect();
            Ok((served, lines))
        }
        (None, Some(link)) => Ok((backend(ServeFrom::Link(link), link_options)?.0, Vec::new())),
        (None, None) => Err(BackendError::NoSource),
    }
}

/// Why a server's `--manifest FILE` cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ManifestFileError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest has errors (each problem names its field path, node and line).
    #[error("{path}: {}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n{path}: "))]
    Invalid {
        /// The file.
        path: String,
        /// Every problem found, errors and warnings.
        problems: Vec<Problem>,
    },
}

/// Reads and checks the manifest a server serves. Warnings are returned beside it, for the
/// caller to print.
///
/// # Errors
///
/// [`ManifestFileError`] when the file cannot be read or the manifest has errors.
pub fn read_manifest_file(
    path: &Path,
    registry: &NodeRegistry,
) -> Result<(Manifest, Vec<Problem>), ManifestFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestFileError::Unreadable {
        path: path.display().to_string(),
        source,
    })?;
    let checked = check_document(&text, Format::detect(path.to_str(), &text), registry);
    match checked.manifest {
        Some(manifest) if !checked.report.has_errors() => Ok((manifest, checked.report.problems)),
        _ => Err(ManifestFileError::Invalid {
            path: path.display().to_string(),
            problems: checked.report.problems,
        }),
    }
}
