//! `remotemedia.v1.PipelineService` over any [`PipelineTransport`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::serve::{Admission, AdmitError, SessionSlot};
use remotemedia_runtime_core::{PipelineTransport, SessionOutput, StreamSession, execute_session};
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{failure_to_wire, item_from_wire, item_to_wire, output_to_wire};
use crate::outbox::{Outbox, ResponseStream, Undelivered};
use crate::pb::pipeline_service_server::{PipelineService, PipelineServiceServer};
use crate::pb::{self, stream_request, stream_response};
use crate::status::{from_convert_error, from_run_error, from_session_error};

/// Responses buffered per stream before the session waits for the client to read.
const STREAM_BUFFER: usize = 32;

/// Limits and policies of the service.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// Accept a manifest from the client instead of the served pipeline.
    pub allow_client_manifests: bool,
    /// Open sessions (streams and unary calls) beyond which new ones get RESOURCE_EXHAUSTED.
    pub max_sessions: usize,
    /// A stream whose client sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// A stream whose first message (`open`) does not come within this long ends with
    /// DEADLINE_EXCEEDED, freeing what it held.
    pub open_timeout: Duration,
    /// How long a session may wait on an input the pipeline does not take, or on a response
    /// buffer the client does not read, before it ends (with `closed`, or DEADLINE_EXCEEDED
    /// when the client reads nothing).
    pub stall_timeout: Duration,
    /// How long a unary call may take.
    pub unary_deadline: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            allow_client_manifests: false,
            max_sessions: 1_000,
            idle_timeout: Duration::from_secs(60),
            open_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(15),
            unary_deadline: Duration::from_secs(30),
        }
    }
}

/// The pipeline service.
pub struct GrpcService {
    transport: Arc<dyn PipelineTransport>,
    options: ServiceOptions,
    open: Admission,
}

impl GrpcService {
    /// Serves sessions opened on `transport`.
    #[must_use]
    pub fn new(transport: Arc<dyn PipelineTransport>, options: ServiceOptions) -> Self {
        Self {
            transport,
            options,
            open: Admission::default(),
        }
    }

    /// The open-session count, for metrics and drain.
    #[must_use]
    pub fn open_sessions(&self) -> Admission {
        self.open.clone()
    }

    /// The tonic service, with `max_message_bytes` as the limit of a message in either
    /// direction.
    #[must_use]
    pub fn into_server(self, max_message_bytes: usize) -> PipelineServiceServer<Self> {
        PipelineServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }

    /// A client's manifest, checked against the node types sessions run on (for a worker over
    /// the link, its catalog): problems name node ids and field paths.
    async fn client_manifest(&self, text: &str) -> Result<Option<Arc<Manifest>>, Status> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        if !self.options.allow_client_manifests {
            return Err(Status::permission_denied(
                "this server runs its own pipeline; client manifests are refused (the server \
                 allows them with --allow-client-manifests)",
            ));
        }
        let node_types = self
            .transport
            .node_types()
            .await
            .map_err(|e| from_run_error(&e))?;
        Manifest::from_text(text, Format::detect(None, text), &node_types)
            .map(Some)
            .map_err(|report| Status::invalid_argument(format!("manifest: {report}")))
    }

    fn admit(&self) -> Result<SessionSlot, Status> {
        self.open
            .admit(self.options.max_sessions)
            .map_err(|refusal| match refusal {
                AdmitError::Draining => Status::unavailable(refusal.to_string()),
                AdmitError::Full { .. } => Status::resource_exhausted(refusal.to_string()),
            })
    }
}

#[tonic::async_trait]
impl PipelineService for GrpcService {
    async fn execute(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let request = request.into_inner();
        let manifest = self.client_manifest(&request.manifest).await?;
        let input = request
            .input
            .ok_or_else(|| Status::invalid_argument("input: the request has no input item"))?;
        let input = item_from_wire(input).map_err(|e| from_convert_error(e, "input"))?;
        let _slot = self.admit()?;
        let opened = self
            .transport
            .open(manifest)
            .await
            .map_err(|e| from_run_error(&e))?;
        let outputs = execute_session(
            opened.session.as_ref(),
            opened.manifest.name(),
            input,
            self.options.unary_deadline,
        )
        .await
        .map_err(|e| from_run_error(&e))?;
        Ok(Response::new(pb::ExecuteResponse {
            outputs: outputs.iter().map(output_to_wire).collect(),
        }))
    }

    type StreamStream = ResponseStream;

    async fn stream(
        &self,
        request: Request<Streaming<pb::StreamRequest>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut inbound = request.into_inner();
        let open_timeout = self.options.open_timeout;
        let first = tokio::time::timeout(open_timeout, inbound.message())
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!(
                    "no `open` message within {open_timeout:?} of the stream's start"
                ))
            })?;
        let open = match first? {
            Some(pb::StreamRequest {
                kind: Some(stream_request::Kind::Open(open)),
            }) => open,
            Some(other) => {
                return Err(Status::failed_precondition(format!(
                    "the first message of a stream must be `open`, not {}",
                    request_kind(&other)
                )));
            }
            None => {
                return Err(Status::invalid_argument(
                    "the stream ended before its `open` message",
                ));
            }
        };
        let manifest = self.client_manifest(&open.manifest).await?;
        let slot = self.admit()?;
        let opened = self
            .transport
            .open(manifest)
            .await
            .map_err(|e| from_run_error(&e))?;
        let session: Arc<dyn StreamSession> = Arc::from(opened.session);
        let (responses, stream) = Outbox::new(STREAM_BUFFER, self.options.stall_timeout);
        let ready = pb::Ready {
            session_id: session.session_id().to_owned(),
            manifest_json: serde_json::to_string(opened.manifest.as_ref()).unwrap_or_default(),
        };
        // Cannot fail: the channel is new and has room.
        let _ = responses.try_deliver(Ok(response(stream_response::Kind::Ready(ready))));
        let slot = Arc::new(slot);
        let ending = Arc::new(OnceLock::new());
        let (relay_done, relay_finished) = watch::channel(false);
        let feed = Feed {
            session: session.clone(),
            responses: responses.clone(),
            ending: ending.clone(),
            idle_timeout: self.options.idle_timeout,
            relay_finished,
            _slot: slot.clone(),
        };
        tokio::spawn(feed.run(inbound));
        tokio::spawn(async move {
            relay(session, responses, ending, slot).await;
            relay_done.send_replace(true);
        });
        Ok(Response::new(stream))
    }

    async fn list_node_types(
        &self,
        _request: Request<pb::ListNodeTypesRequest>,
    ) -> Result<Response<pb::ListNodeTypesResponse>, Status> {
        let kinds = |kinds: &[remotemedia_runtime_core::data::DataKind]| {
            kinds.iter().map(|k| k.as_str().to_owned()).collect()
        };
        let registry = self
            .transport
            .node_types()
            .await
            .map_err(|e| from_run_error(&e))?;
        let node_types = registry
            .factories()
            .map(|f| pb::NodeType {
                node_type: f.node_type().to_owned(),
                description: f.description().to_owned(),
                accepts: kinds(f.io().accepts),
                produces: kinds(f.io().produces),
                params_schema_json: f.params_schema().to_string(),
            })
            .collect();
        Ok(Response::new(pb::ListNodeTypesResponse {
            node_types,
            catalog_json: registry.catalog().to_json(),
        }))
    }

    async fn get_version(
        &self,
        _request: Request<pb::GetVersionRequest>,
    ) -> Result<Response<pb::VersionInfo>, Status> {
        Ok(Response::new(pb::VersionInfo {
            server: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: "remotemedia.v1".to_owned(),
        }))
    }
}

fn response(kind: stream_response::Kind) -> pb::StreamResponse {
    pb::StreamResponse { kind: Some(kind) }
}

fn request_kind(request: &pb::StreamRequest) -> &'static str {
    match request.kind {
        Some(stream_request::Kind::Open(_)) => "`open`",
        Some(stream_request::Kind::Input(_)) => "`input`",
        Some(stream_request::Kind::EndInput(_)) => "`end_input`",
        None => "a message with no kind",
    }
}

/// The client's half of a stream: items into the session.
struct Feed {
    session: Arc<dyn StreamSession>,
    responses: Outbox,
    /// Why the session is being closed early, for the `closed` response.
    ending: Arc<OnceLock<String>>,
    idle_timeout: Duration,
    /// Turns true once the relay sent `closed`: the stream is over, whatever the client does.
    relay_finished: watch::Receiver<bool>,
    _slot: Arc<SessionSlot>,
}

impl Feed {
    async fn run(self, mut inbound: Streaming<pb::StreamRequest>) {
        let mut relay_finished = self.relay_finished.clone();
        let mut input_ended = false;
        loop {
            let idle_timeout = self.idle_timeout;
            // Once input ended, outputs may flow for long: only the client going away matters.
            let message = async {
                if input_ended {
                    Ok(inbound.message().await)
                } else {
                    tokio::time::timeout(idle_timeout, inbound.message()).await
                }
            };
            let next = tokio::select! {
                biased;
                // Returning drops our response sender, which lets the response stream end.
                _ = relay_finished.wait_for(|finished| *finished) => return,
                next = message => next,
            };
            let Ok(next) = next else {
                let reason = format!("no message from the client for {idle_timeout:?}");
                return self.end(reason).await;
            };
            let kind = match next {
                Ok(Some(request)) => request.kind,
                Ok(None) if input_ended => return,
                Ok(None) => {
                    // Half-close: no more input, outputs keep coming.
                    input_ended = true;
                    self.session.end_input().await;
                    continue;
                }
                Err(status) => {
                    // A request that could not be read (too large, not protobuf) ends the
                    // stream with its status; for a client that vanished, nobody reads it.
                    let reason = format!("the request stream failed: {}", status.message());
                    return self.fail(status, reason).await;
                }
            };
            let result = match kind {
                Some(stream_request::Kind::Input(_)) if input_ended => Err(Stop::Refused(
                    Status::failed_precondition("`input` after `end_input`"),
                )),
                Some(stream_request::Kind::Input(item)) => self.send(item).await,
                Some(stream_request::Kind::EndInput(_)) => {
                    input_ended = true;
                    self.session.end_input().await;
                    Ok(())
                }
                Some(stream_request::Kind::Open(_)) => Err(Stop::Refused(
                    Status::failed_precondition("`open` may only be the first message of a stream"),
                )),
                None => Err(Stop::Refused(Status::invalid_argument(
                    "kind: no request kind is set",
                ))),
            };
            match result {
                Ok(()) => {}
                Err(Stop::Refused(status)) => {
                    let reason = status.message().to_owned();
                    return self.fail(status, reason).await;
                }
                Err(Stop::Stalled(reason)) => {
                    tracing::info!(%reason, "session ended");
                    return self.end(reason).await;
                }
            }
        }
    }

    /// Hands `item` to the session; an input the pipeline does not take within the stall
    /// deadline ends the session (the relay then says why in `closed`).
    async fn send(&self, item: pb::Item) -> Result<(), Stop> {
        let item =
            item_from_wire(item).map_err(|e| Stop::Refused(from_convert_error(e, "input")))?;
        let stall_timeout = self.responses.stall_timeout();
        match tokio::time::timeout(stall_timeout, self.session.send_input(item)).await {
            Ok(Ok(())) => Ok(()),
            // The relay reports a failed session as `closed`; nothing to add here.
            Ok(Err(remotemedia_runtime_core::SessionError::Aborted { .. })) => Ok(()),
            Ok(Err(e)) => Err(Stop::Refused(from_session_error(&e))),
            Err(_) => Err(Stop::Stalled(format!(
                "the pipeline took no input for {stall_timeout:?}: its outputs are not being \
                 read, or it is slower than its input"
            ))),
        }
    }

    /// Ends the stream with `status` after the responses already queued.
    async fn fail(&self, status: Status, reason: String) {
        if self.responses.deliver(Err(status.clone())).await == Err(Undelivered::Stalled) {
            self.responses.abort(status);
        }
        self.end(reason).await;
    }

    async fn end(&self, reason: String) {
        let _ = self.ending.set(reason);
        self.session.close().await;
    }
}

/// Why the client's half stops early.
enum Stop {
    /// A request the server refuses: the stream ends with this status.
    Refused(Status),
    /// The pipeline took no input within the stall deadline: the session ends, `closed` says
    /// why.
    Stalled(String),
}

/// The server's half of a stream: session outputs to the client, `closed` last. A client that
/// reads nothing for the stall deadline ends the session, and its stream with
/// DEADLINE_EXCEEDED ahead of what is still queued.
async fn relay(
    session: Arc<dyn StreamSession>,
    responses: Outbox,
    ending: Arc<OnceLock<String>>,
    _slot: Arc<SessionSlot>,
) {
    loop {
        // `finished`: the session ended by itself, so there is nothing left to close.
        let (kind, last, finished) = match session.recv_output().await {
            Ok(Some(SessionOutput::Data { node_id, data })) => {
                let result = pb::Result {
                    node_id,
                    item: Some(item_to_wire(&data)),
                };
                (stream_response::Kind::Result(result), false, false)
            }
            Ok(Some(SessionOutput::Error(failure))) => {
                let error = failure_to_wire(&failure);
                (stream_response::Kind::Error(error), false, false)
            }
            Ok(None) => {
                let closed = match ending.get() {
                    Some(reason) => aborted(reason.clone()),
                    None => pb::Closed {
                        reason: "completed".to_owned(),
                        ending: pb::closed::Ending::Completed.into(),
                    },
                };
                (stream_response::Kind::Closed(closed), true, true)
            }
            Err(e) => {
                let closed = aborted(e.to_string());
                (stream_response::Kind::Closed(closed), true, false)
            }
        };
        match responses.deliver(Ok(response(kind))).await {
            Ok(()) if !last => continue,
            Ok(()) if finished => return,
            Ok(()) => {}
            // The client is gone: nobody will read the rest.
            Err(Undelivered::Gone) => {}
            Err(Undelivered::Stalled) => {
                let reason = format!(
                    "the client read no response for {:?}",
                    responses.stall_timeout()
                );
                tracing::info!(%reason, "session ended");
                let _ = ending.set(reason.clone());
                responses.abort(Status::deadline_exceeded(reason));
            }
        }
        session.close().await;
        return;
    }
}

fn aborted(reason: String) -> pb::Closed {
    pb::Closed {
        reason,
        ending: pb::closed::Ending::Aborted.into(),
    }
}
