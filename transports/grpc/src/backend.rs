//! What the gRPC service runs sessions on: a pipeline in this process, or the pod's worker over
//! the iceoryx2 link. The service does not know which.

use std::sync::Arc;

use async_trait::async_trait;
use remotemedia_runtime_core::ipc::IpcRunner;
use remotemedia_runtime_core::manifest::Manifest;
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::{PipelineRunner, RunError, StreamSession};

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

    /// Node types known here: listed to clients, and used to check client manifests.
    fn registry(&self) -> &NodeRegistry;

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
    served: Arc<Manifest>,
}

impl InProcess {
    /// Serves `served` with `runner`.
    #[must_use]
    pub fn new(runner: PipelineRunner, served: Arc<Manifest>) -> Self {
        Self { runner, served }
    }
}

#[async_trait]
impl Backend for InProcess {
    async fn open(&self, manifest: Option<Arc<Manifest>>) -> Result<OpenedSession, RunError> {
        let manifest = manifest.unwrap_or_else(|| self.served.clone());
        let session = self.runner.create_stream_session(&manifest)?;
        Ok(OpenedSession {
            session: Box::new(session),
            manifest,
        })
    }

    fn registry(&self) -> &NodeRegistry {
        self.runner.registry()
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
    registry: NodeRegistry,
}

impl Linked {
    /// Opens sessions through `client`; `registry` checks client manifests before they are
    /// sent (the worker checks them again).
    #[must_use]
    pub fn new(client: IpcRunner, registry: NodeRegistry) -> Self {
        Self { client, registry }
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

    fn registry(&self) -> &NodeRegistry {
        &self.registry
    }

    async fn ready(&self) -> Result<(), String> {
        self.client.reachable().await.map_err(|e| e.to_string())
    }
}
