//! What a transport's server runs sessions on, shared by every server binary (gRPC, WebRTC):
//!
//! * [`Backend`]: the served pipeline in this process ([`InProcess`], `--manifest`) or the
//!   pod's worker over the iceoryx2 link ([`Linked`], `--connect`). Servers do not know which.
//! * [`Admission`]: how many sessions are open, the limit, and the drain switch flipped on
//!   SIGTERM; each admitted session holds a [`SessionSlot`] until it ends. [`drain`] is how
//!   every server stops: refuse new sessions, wait for the open ones (and the linger).
//! * [`read_manifest_file`]: the `--manifest FILE` a server is started with, checked.
//! * [`Tokens`]: the bearer tokens of `--token-file`.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::ipc::{ClientOptions, IpcRunner, LinkName};
use crate::manifest::{Format, Manifest, Problem, check_document};
use crate::nodes::{NodeCatalog, NodeRegistry};
use crate::{PipelinePlan, PipelineRunner, RunError, StreamSession};

mod admission;
#[cfg(feature = "server")]
pub mod binary;
mod tokens;

pub use admission::{Admission, AdmitError, DrainPolicy, SessionSlot, drain};
pub use tokens::{TokenFileError, TokenRefusal, Tokens};

/// A session just opened, with the manifest it runs.
pub struct OpenedSession {
    /// The session.
    pub session: Box<dyn StreamSession>,
    /// What it runs.
    pub manifest: Arc<Manifest>,
}

/// Where sessions run.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Opens a session on the served pipeline, or on `manifest` when given.
    async fn open(&self, manifest: Option<Arc<Manifest>>) -> Result<OpenedSession, RunError>;

    /// The node types sessions can use: listed to clients, and used to check client
    /// manifests. For a worker over the link, what the worker says it runs.
    async fn node_types(&self) -> Result<Arc<NodeRegistry>, RunError>;

    /// `Ok` while sessions can be opened (for `grpc.health.v1`).
    async fn ready(&self) -> Result<(), String>;

    /// Prometheus text of the pipelines run here (empty when they run elsewhere: the worker
    /// serves its own).
    fn metrics(&self) -> String {
        String::new()
    }
}

/// The pipeline runs in this process.
pub struct InProcess {
    runner: PipelineRunner,
    /// The served pipeline, planned once.
    served: Arc<PipelinePlan>,
}

impl InProcess {
    /// Serves `served` with `runner`.
    ///
    /// # Errors
    /// [`RunError::InvalidManifest`] when `served` does not validate against the runner's
    /// node types.
    pub fn new(runner: PipelineRunner, served: Arc<Manifest>) -> Result<Self, RunError> {
        let served = runner.plan(served)?;
        Ok(Self { runner, served })
    }
}

#[async_trait]
impl Backend for InProcess {
    async fn open(&self, manifest: Option<Arc<Manifest>>) -> Result<OpenedSession, RunError> {
        let plan = match manifest {
            Some(manifest) => self.runner.plan(manifest)?,
            None => self.served.clone(),
        };
        let session = self.runner.start(&plan)?;
        Ok(OpenedSession {
            session: Box::new(session),
            manifest: plan.manifest().clone(),
        })
    }

    async fn node_types(&self) -> Result<Arc<NodeRegistry>, RunError> {
        Ok(self.runner.shared_registry())
    }

    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    fn metrics(&self) -> String {
        self.runner.metrics().render()
    }
}

/// The pipeline runs in the pod's worker, reached over the iceoryx2 link.
pub struct Linked {
    client: IpcRunner,
    /// The node types of the worker's catalog, rebuilt when another worker answers.
    described: std::sync::Mutex<Option<(Arc<NodeCatalog>, Arc<NodeRegistry>)>>,
}

impl Linked {
    /// Opens sessions through `client`; client manifests are checked against the node
    /// catalog the worker sends (and checked again by the worker).
    #[must_use]
    pub fn new(client: IpcRunner) -> Self {
        Self {
            client,
            described: std::sync::Mutex::default(),
        }
    }
}

#[async_trait]
impl Backend for Linked {
    async fn open(&self, manifest: Option<Arc<Manifest>>) -> Result<OpenedSession, RunError> {
        let session = match &manifest {
            Some(m) => self.client.stream_manifest(m).await?,
            None => self.client.stream_served().await?,
        };
        let manifest = match (manifest, session.manifest()) {
            (Some(asked), _) => asked,
            (None, Some(running)) => Arc::new(running.clone()),
            (None, None) => {
                return Err(RunError::Refused {
                    reason: "the worker did not say which pipeline it runs".to_owned(),
                });
            }
        };
        Ok(OpenedSession {
            session: Box::new(session),
            manifest,
        })
    }

    async fn node_types(&self) -> Result<Arc<NodeRegistry>, RunError> {
        let catalog = self.client.catalog().await?;
        let mut described = self
            .described
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, registry)) = described.as_ref()
            && Arc::ptr_eq(seen, &catalog)
        {
            return Ok(registry.clone());
        }
        let registry =
            Arc::new(
                NodeRegistry::from_catalog(&catalog).map_err(|e| RunError::Refused {
                    reason: format!("the worker's node catalog: {e}"),
                })?,
            );
        *described = Some((catalog, registry.clone()));
        Ok(registry)
    }

    async fn ready(&self) -> Result<(), String> {
        self.client.reachable().await.map_err(|e| e.to_string())
    }
}

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
    /// The link name is invalid or the link's client could not be created.
    #[error("--connect: {0}")]
    Link(String),
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
pub fn backend(from: ServeFrom<'_>) -> Result<(Arc<dyn Backend>, Vec<Problem>), BackendError> {
    let registry = NodeRegistry::with_builtins();
    match from {
        ServeFrom::Manifest(path) => {
            let (manifest, warnings) = read_manifest_file(path, &registry)?;
            let runner = PipelineRunner::with_registry(registry);
            let served = InProcess::new(runner, Arc::new(manifest)).map_err(BackendError::Plan)?;
            Ok((Arc::new(served), warnings))
        }
        ServeFrom::Link(name) => {
            let link = LinkName::new(name).map_err(|e| BackendError::Link(e.to_string()))?;
            let client = IpcRunner::connect(link, ClientOptions::default())
                .map_err(|e| BackendError::Link(e.to_string()))?;
            Ok((Arc::new(Linked::new(client)), Vec::new()))
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
) -> Result<(Arc<dyn Backend>, Vec<String>), BackendError> {
    match (manifest, connect) {
        (Some(path), _) => {
            let (served, warnings) = backend(ServeFrom::Manifest(path))?;
            let lines = warnings
                .iter()
                .map(|w| format!("{}: {w}", path.display()))
                .collect();
            Ok((served, lines))
        }
        (None, Some(link)) => Ok((backend(ServeFrom::Link(link))?.0, Vec::new())),
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
