//! A [`PipelineTransport`] that runs pipelines on a `remotemedia-grpc` server, so code written
//! against runtime-core's traits runs remotely unchanged (and the conformance suite can hold
//! the server to the same contract as the in-process runner).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use remotemedia_runtime_core::manifest::Manifest;
use remotemedia_runtime_core::nodes::{NodeCatalog, NodeRegistry};
use remotemedia_runtime_core::{
    OpenedSession, PipelineTransport, RunError, SessionError, SessionOutput, StreamSession,
    TransportData,
};
use tokio::sync::{Mutex, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use crate::convert::{item_to_wire, output_from_wire, result_from_wire};
use crate::pb::pipeline_service_client::PipelineServiceClient;
use crate::pb::{self, stream_request, stream_response};

/// Requests a session may have in flight before `send_input` waits.
const REQUEST_BUFFER: usize = 16;

/// Runs pipelines on a gRPC server.
#[derive(Clone, Debug)]
pub struct GrpcRunner {
    client: PipelineServiceClient<Channel>,
    token: Option<Arc<str>>,
}

impl GrpcRunner {
    /// A runner on `channel` (e.g. `Channel::from_static("http://127.0.0.1:50051").connect()`).
    #[must_use]
    pub fn new(channel: Channel) -> Self {
        Self {
            client: PipelineServiceClient::new(channel),
            token: None,
        }
    }

    /// Sends `authorization: Bearer <token>` with every call.
    #[must_use]
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }

    fn request<T>(&self, message: T) -> Result<tonic::Request<T>, Status> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| Status::invalid_argument("the token is not a valid header value"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }

    /// Opens a session on the server's own pipeline.
    ///
    /// # Errors
    /// The server refused or could not be reached.
    pub async fn stream_served(&self) -> Result<GrpcSession, RunError> {
        self.open_text(String::new()).await
    }

    async fn open_text(&self, manifest: String) -> Result<GrpcSession, RunError> {
        let (requests, outgoing) = mpsc::channel(REQUEST_BUFFER);
        let open = pb::StreamRequest {
            kind: Some(stream_request::Kind::Open(pb::Open { manifest })),
        };
        // Cannot fail: the channel is new and has room.
        let _ = requests.try_send(open);
        let request = self
            .request(ReceiverStream::new(outgoing))
            .map_err(|s| run_error(&s))?;
        let mut responses = self
            .client
            .clone()
            .stream(request)
            .await
            .map_err(|s| run_error(&s))?
            .into_inner();
        let ready = match responses.message().await.map_err(|s| run_error(&s))? {
            Some(pb::StreamResponse {
                kind: Some(stream_response::Kind::Ready(ready)),
            }) => ready,
            other => {
                return Err(RunError::Refused {
                    reason: format!("the server answered `open` with {other:?}"),
                });
            }
        };
        let manifest = serde_json::from_str::<Manifest>(&ready.manifest_json).map_err(|e| {
            RunError::Refused {
                reason: format!("the server's `ready` names no readable manifest: {e}"),
            }
        })?;
        Ok(GrpcSession {
            id: ready.session_id,
            manifest: Arc::new(manifest),
            requests: Mutex::new(Some(requests)),
            responses: Mutex::new(Some(responses)),
            input_ended: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            closing: watch::Sender::new(false),
        })
    }
}

/// A server's status as the runtime error it stands for.
fn run_error(status: &Status) -> RunError {
    match status.code() {
        Code::Unavailable => RunError::Unavailable {
            reason: status.message().to_owned(),
        },
        _ => RunError::Refused {
            reason: format!("{:?}: {}", status.code(), status.message()),
        },
    }
}

#[async_trait]
impl PipelineTransport for GrpcRunner {
    async fn open(&self, manifest: Option<Arc<Manifest>>) -> Result<OpenedSession, RunError> {
        let text = match &manifest {
            Some(m) => manifest_text(m)?,
            None => String::new(),
        };
        let session = self.open_text(text).await?;
        Ok(OpenedSession {
            manifest: manifest.unwrap_or_else(|| session.manifest.clone()),
            session: Box::new(session),
        })
    }

    /// The server's node catalog (`ListNodeTypes`), asked for on every call.
    async fn node_types(&self) -> Result<Arc<NodeRegistry>, RunError> {
        let request = self
            .request(pb::ListNodeTypesRequest {})
            .map_err(|s| run_error(&s))?;
        let listed = self
            .client
            .clone()
            .list_node_types(request)
            .await
            .map_err(|s| run_error(&s))?
            .into_inner();
        let refused = |e: &dyn std::fmt::Display| RunError::Refused {
            reason: format!("the server's node catalog: {e}"),
        };
        let catalog = NodeCatalog::from_json(&listed.catalog_json).map_err(|e| refused(&e))?;
        NodeRegistry::from_catalog(&catalog)
            .map(Arc::new)
            .map_err(|e| refused(&e))
    }

    /// A unary call is the server's `Execute`, under the server's deadline.
    async fn execute(
        &self,
        manifest: Arc<Manifest>,
        input: TransportData,
    ) -> Result<Vec<SessionOutput>, RunError> {
        let request = pb::ExecuteRequest {
            input: Some(item_to_wire(&input)),
            manifest: manifest_text(&manifest)?,
        };
        let request = self.request(request).map_err(|s| run_error(&s))?;
        let response = self
            .client
            .clone()
            .execute(request)
            .await
            .map_err(|s| run_error(&s))?;
        response
            .into_inner()
            .outputs
            .into_iter()
            .map(|o| {
                output_from_wire(o).map_err(|e| RunError::Refused {
                    reason: format!("the server sent invalid output: {e}"),
                })
            })
            .collect()
    }
}

fn manifest_text(manifest: &Manifest) -> Result<String, RunError> {
    serde_json::to_string(manifest).map_err(|e| RunError::Refused {
        reason: format!("the manifest could not be encoded: {e}"),
    })
}

/// A streaming session on a gRPC server.
pub struct GrpcSession {
    id: String,
    /// What the session runs, as the server said in `ready`.
    manifest: Arc<Manifest>,
    /// `None` once closed: dropping it half-closes the request stream.
    requests: Mutex<Option<mpsc::Sender<pb::StreamRequest>>>,
    /// `None` once closed: dropping it cancels the call.
    responses: Mutex<Option<Streaming<pb::StreamResponse>>>,
    input_ended: AtomicBool,
    finished: AtomicBool,
    /// Turns true on close, waking a `recv_output` that waits for the server.
    closing: watch::Sender<bool>,
}

impl std::fmt::Debug for GrpcSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcSession")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl GrpcSession {
    /// The manifest the session runs, as the server said when it opened.
    #[must_use]
    pub fn manifest(&self) -> &Arc<Manifest> {
        &self.manifest
    }

    fn aborted(&self, reason: impl Into<String>) -> SessionError {
        self.finished.store(true, Ordering::Release);
        SessionError::Aborted {
            session_id: self.id.clone(),
            reason: reason.into(),
        }
    }
}

#[async_trait]
impl StreamSession for GrpcSession {
    fn session_id(&self) -> &str {
        &self.id
    }

    async fn send_input(&self, input: TransportData) -> Result<(), SessionError> {
        input
            .data
            .check_format()
            .map_err(SessionError::InvalidInput)?;
        if self.input_ended.load(Ordering::Acquire) {
            return Err(SessionError::InputEnded {
                session_id: self.id.clone(),
            });
        }
        let requests = self.requests.lock().await.clone();
        let Some(requests) = requests else {
            return Err(SessionError::Closed {
                session_id: self.id.clone(),
            });
        };
        let request = pb::StreamRequest {
            kind: Some(stream_request::Kind::Input(item_to_wire(&input))),
        };
        requests
            .send(request)
            .await
            .map_err(|_| self.aborted("the server ended the stream"))
    }

    async fn end_input(&self) {
        if self.input_ended.swap(true, Ordering::AcqRel) {
            return;
        }
        let requests = self.requests.lock().await.clone();
        if let Some(requests) = requests {
            let end = pb::StreamRequest {
                kind: Some(stream_request::Kind::EndInput(pb::EndInput {})),
            };
            let _ = requests.send(end).await;
        }
    }

    async fn recv_output(&self) -> Result<Option<SessionOutput>, SessionError> {
        let mut closing = self.closing.subscribe();
        let mut responses = self.responses.lock().await;
        let Some(stream) = responses.as_mut() else {
            return Ok(None);
        };
        let message = tokio::select! {
            biased;
            _ = closing.wait_for(|closing| *closing) => return Ok(None),
            message = stream.message() => message,
        };
        let message =
            message.map_err(|s| self.aborted(format!("{:?}: {}", s.code(), s.message())))?;
        let kind = match message {
            Some(pb::StreamResponse { kind: Some(kind) }) => kind,
            Some(pb::StreamResponse { kind: None }) => {
                return Err(self.aborted("the server sent a response with no kind"));
            }
            None => {
                self.finished.store(true, Ordering::Release);
                return Ok(None);
            }
        };
        match kind {
            stream_response::Kind::Result(result) => result_from_wire(result)
                .map(Some)
                .map_err(|e| self.aborted(format!("the server sent invalid data: {e}"))),
            stream_response::Kind::Error(error) => Ok(Some(SessionOutput::Error(
                remotemedia_runtime_core::NodeFailure {
                    node_id: error.node_id,
                    sequence: error.sequence,
                    message: error.message,
                },
            ))),
            stream_response::Kind::Closed(closed)
                if closed.ending() == pb::closed::Ending::Completed =>
            {
                self.finished.store(true, Ordering::Release);
                *responses = None;
                Ok(None)
            }
            stream_response::Kind::Closed(closed) => Err(self.aborted(closed.reason)),
            stream_response::Kind::Ready(_) => Err(self.aborted("a second `ready`")),
        }
    }

    async fn close(&self) {
        self.closing.send_replace(true);
        self.finished.store(true, Ordering::Release);
        self.input_ended.store(true, Ordering::Release);
        self.requests.lock().await.take();
        self.responses.lock().await.take();
    }

    fn is_active(&self) -> bool {
        !self.finished.load(Ordering::Acquire)
    }
}
