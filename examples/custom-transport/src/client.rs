//! The client side, as a [`PipelineTransport`]: a Rust program (or the conformance suite)
//! uses a pipeline behind the socket exactly as it would use one in its own process.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use remotemedia_runtime_core::manifest::Manifest;
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::{
    NodeFailure, OpenedSession, PipelineTransport, RunError, SessionError, SessionOutput,
    StreamSession, TransportData,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex;

use crate::protocol::{ClientLine, OpenRequest, ServerLine};

/// How long a unary call (the runtime's one unary path, `execute_session`) may take before it
/// fails with `DeadlineExceeded`.
const UNARY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs pipelines in the server listening on `socket`, sending each session's manifest.
#[derive(Clone, Debug)]
pub struct JsonlRunner {
    socket: PathBuf,
}

impl JsonlRunner {
    /// A runner for the server at `socket`.
    #[must_use]
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }
}

#[async_trait]
impl PipelineTransport for JsonlRunner {
    /// A session on `manifest`. The protocol opens the served pipeline only with a first data
    /// line, before which nothing can be said about it, so this runner's sessions name their
    /// manifest.
    async fn open(&self, manifest: Option<Arc<Manifest>>) -> Result<OpenedSession, RunError> {
        let Some(manifest) = manifest else {
            return Err(RunError::Refused {
                reason: "JSON Lines sessions opened by JsonlRunner name their manifest".to_owned(),
            });
        };
        Ok(OpenedSession {
            session: self.open_manifest(&manifest).await?,
            manifest,
        })
    }

    /// The protocol has no way to list node types.
    async fn node_types(&self) -> Result<Arc<NodeRegistry>, RunError> {
        Err(RunError::Refused {
            reason: "the JSON Lines protocol does not list node types".to_owned(),
        })
    }

    fn unary_deadline(&self) -> std::time::Duration {
        UNARY_DEADLINE
    }
}

impl JsonlRunner {
    async fn open_manifest(&self, manifest: &Manifest) -> Result<Box<dyn StreamSession>, RunError> {
        let unavailable = |e: std::io::Error| RunError::Unavailable {
            reason: format!("cannot reach {}: {e}", self.socket.display()),
        };
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(unavailable)?;
        let (read, write) = stream.into_split();
        let open = ClientLine::Open {
            open: OpenRequest {
                manifest: serde_json::to_value(manifest).map_err(|e| RunError::Refused {
                    reason: e.to_string(),
                })?,
            },
        };
        let session = JsonlSession {
            id: String::new(),
            writer: Mutex::new(Some(write)),
            reader: Mutex::new(BufReader::new(read).lines()),
            closed: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        };
        session
            .write(&open)
            .await
            .map_err(|e| RunError::Unavailable {
                reason: e.to_string(),
            })?;
        match session.read().await {
            Ok(ServerLine::Ready { session_id }) => Ok(Box::new(JsonlSession {
                id: session_id,
                ..session
            })),
            Ok(ServerLine::Closed { reason }) => Err(RunError::Refused { reason }),
            Ok(other) => Err(RunError::Refused {
                reason: format!("unexpected first line {other:?}"),
            }),
            Err(reason) => Err(RunError::Unavailable { reason }),
        }
    }
}

/// One connection.
struct JsonlSession {
    id: String,
    writer: Mutex<Option<OwnedWriteHalf>>,
    reader: Mutex<Lines<BufReader<OwnedReadHalf>>>,
    closed: AtomicBool,
    ended: AtomicBool,
}

impl JsonlSession {
    async fn write(&self, line: &ClientLine) -> Result<(), SessionError> {
        let gone = || SessionError::InputEnded {
            session_id: self.id.clone(),
        };
        let mut text =
            serde_json::to_vec(line).map_err(|e| SessionError::InvalidInput(e.to_string()))?;
        text.push(b'\n');
        let mut writer = self.writer.lock().await;
        let write = writer.as_mut().ok_or_else(gone)?;
        write.write_all(&text).await.map_err(|_| gone())
    }

    /// The next line, or why there is none.
    async fn read(&self) -> Result<ServerLine, String> {
        let mut reader = self.reader.lock().await;
        match reader.next_line().await {
            Ok(Some(line)) => {
                serde_json::from_str(&line).map_err(|e| format!("bad line from server: {e}"))
            }
            Ok(None) => Err("the server closed the connection".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[async_trait]
impl StreamSession for JsonlSession {
    fn session_id(&self) -> &str {
        &self.id
    }

    async fn send_input(&self, input: TransportData) -> Result<(), SessionError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(SessionError::Closed {
                session_id: self.id.clone(),
            });
        }
        self.write(&ClientLine::Data(input)).await
    }

    async fn end_input(&self) {
        let _ = self.write(&ClientLine::End { end: true }).await;
        if let Some(mut write) = self.writer.lock().await.take() {
            let _ = write.shutdown().await;
        }
    }

    async fn recv_output(&self) -> Result<Option<SessionOutput>, SessionError> {
        if self.closed.load(Ordering::Acquire) || self.ended.load(Ordering::Acquire) {
            return Ok(None);
        }
        let aborted = |reason: String| SessionError::Aborted {
            session_id: self.id.clone(),
            reason,
        };
        loop {
            match self.read().await.map_err(aborted)? {
                ServerLine::Data { node_id, data } => {
                    return Ok(Some(SessionOutput::Data { node_id, data }));
                }
                ServerLine::Error {
                    node_id,
                    sequence,
                    message,
                } => {
                    return Ok(Some(SessionOutput::Error(NodeFailure {
                        node_id,
                        sequence,
                        message,
                    })));
                }
                ServerLine::Closed { reason } => {
                    self.ended.store(true, Ordering::Release);
                    return if reason == "completed" {
                        Ok(None)
                    } else {
                        Err(aborted(reason))
                    };
                }
                ServerLine::Invalid { line, message } => {
                    return Err(SessionError::InvalidInput(format!(
                        "line {line}: {message}"
                    )));
                }
                ServerLine::Ready { .. } => {}
            }
        }
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Dropping our half of the connection is the close: the server sees the client go
        // and closes its session.
        if let Some(mut write) = self.writer.lock().await.take() {
            let _ = write.shutdown().await;
        }
    }

    fn is_active(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && !self.ended.load(Ordering::Acquire)
    }
}
