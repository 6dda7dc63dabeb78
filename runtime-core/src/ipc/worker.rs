//! The worker: serves a [`PipelineRunner`] on a link to any number of client processes.
//!
//! Clients write `Open` to the link's control pipe; the worker answers on the session's own
//! pipe pair (`Opened` or a refusal in `Closed`), then relays items between the pipes and a
//! [`PipelineSession`](crate::PipelineSession) until the outputs end (`Closed "completed"`),
//! the client sends `Close`, or the client process dies: every
//! [`WorkerOptions::reap_interval`] the worker lists live client nodes and reclaims the
//! sessions of dead ones, then removes what they left in shared memory.
//!
//! A session's pipes outlive its task: they stay until the client lets go of its end (or
//! dies). An iceoryx2 subscriber only finds a publisher when it next looks for one, so a
//! publisher dropped right after its last send (a refusal, a final `Closed`) could take that
//! message with it before the client ever connected.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use iceoryx2::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::codec::{self, Envelope, Message};
use super::link::{self, LinkName, SessionId};
use super::liveness::live_nodes;
use super::pipe::{Inbox, Ipc, IpcError, PipeReader, PipeWriter, Slots, create_node};
use super::refusal;
use crate::manifest::{Format, Manifest, check_document};
use crate::transport::{RunError, SessionError, SessionOutput, StreamSession};
use crate::{PipelineRunner, PipelineSession};

/// Tunables of a [`Worker`].
#[derive(Clone, Copy, Debug)]
pub struct WorkerOptions {
    /// Messages in flight per session pipe before the writer waits.
    pub pipe_depth: usize,
    /// How often dead clients are looked for (their sessions are reclaimed within this).
    pub reap_interval: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            pipe_depth: 16,
            reap_interval: Duration::from_millis(500),
        }
    }
}

/// Why a worker could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Another live process already serves this link.
    #[error("link '{link}' is already served by a live worker (pid {pid})")]
    LinkInUse {
        /// The link.
        link: String,
        /// The other worker's process id.
        pid: i32,
    },
    /// iceoryx2 failed.
    #[error(transparent)]
    Ipc(#[from] IpcError),
}

/// Control messages queued in the worker's control buffer before clients retry.
const CONTROL_DEPTH: usize = 64;
/// Client processes that may write to one worker's control pipe.
const MAX_CLIENTS: usize = 200;
/// How long a session being reclaimed may take to tell its client.
const FAREWELL_TIMEOUT: Duration = Duration::from_millis(200);

/// A worker bound to its link, ready to [`serve`](Worker::serve).
pub struct Worker {
    shared: Arc<Shared>,
    control: PipeReader,
    options: WorkerOptions,
}

/// What every session task needs.
struct Shared {
    link: LinkName,
    node: Node<Ipc>,
    inbox: Arc<Inbox>,
    runner: PipelineRunner,
    manifest: Arc<Manifest>,
    pipe_depth: usize,
    open_sessions: AtomicUsize,
}

/// Watches a serving worker from outside (metrics, readiness).
#[derive(Clone)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
}

impl WorkerHandle {
    /// Sessions currently open.
    #[must_use]
    pub fn open_sessions(&self) -> usize {
        self.shared.open_sessions.load(Ordering::Relaxed)
    }

    /// The link served.
    #[must_use]
    pub fn link(&self) -> &LinkName {
        &self.shared.link
    }
}

impl Worker {
    /// Claims `link`: cleans up after dead processes, refuses if a live worker serves it,
    /// and creates the inbox and control pipe. `manifest` is the pipeline served to clients
    /// that do not send their own.
    ///
    /// # Errors
    /// [`WorkerError::LinkInUse`], or iceoryx2 failed.
    pub fn bind(
        link: LinkName,
        runner: PipelineRunner,
        manifest: Arc<Manifest>,
        options: WorkerOptions,
    ) -> Result<Self, WorkerError> {
        let (node, cleaned) = create_node(&link.worker_node())?;
        if cleaned > 0 {
            tracing::info!(cleaned, "removed resources of dead iceoryx2 nodes");
        }
        let own_id = node.id().value();
        let worker_name = link.worker_node();
        let others = live_nodes(node.config(), |name| name == worker_name)?;
        if let Some(other) = others.iter().find(|n| n.id != own_id) {
            return Err(WorkerError::LinkInUse {
                link: link.to_string(),
                pid: other.pid,
            });
        }
        let inbox = Arc::new(Inbox::create(
            &node,
            &link.worker_inbox(),
            link::WORKER_INBOX_SLOTS,
        )?);
        let control = PipeReader::open_shared(
            &node,
            &link.control_pipe(),
            CONTROL_DEPTH,
            MAX_CLIENTS,
            link::CONTROL_SLOT,
            inbox.clone(),
        )?;
        Ok(Self {
            shared: Arc::new(Shared {
                link,
                node,
                inbox,
                runner,
                manifest,
                pipe_depth: options.pipe_depth,
                open_sessions: AtomicUsize::new(0),
            }),
            control,
            options,
        })
    }

    /// A handle for metrics and readiness.
    #[must_use]
    pub fn handle(&self) -> WorkerHandle {
        WorkerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `shutdown` completes, then aborts every open session (clients get
    /// `Closed` with reason "worker shutting down") and returns.
    ///
    /// # Errors
    /// The control pipe failed.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        let mut sessions: HashMap<SessionId, Running> = HashMap::new();
        let (finished_tx, mut finished) = mpsc::unbounded_channel::<SessionId>();
        let mut reap = tokio::time::interval(self.options.reap_interval);
        reap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let result = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                received = self.control.recv() => match received {
                    Ok(bytes) => self.on_control(&bytes, &mut sessions, &finished_tx),
                    Err(e) => break Err(e.into()),
                },
                Some(id) = finished.recv() => {
                    if let Some(running) = sessions.get_mut(&id) {
                        running.finished = true;
                    }
                }
                _ = reap.tick() => self.reap(&mut sessions),
            }
        };
        for (_, running) in sessions.drain() {
            let _ = running.abort.send("worker shutting down".to_owned());
            let _ = running.task.await;
        }
        result
    }

    fn on_control(
        &self,
        bytes: &[u8],
        sessions: &mut HashMap<SessionId, Running>,
        finished: &mpsc::UnboundedSender<SessionId>,
    ) {
        let (id, manifest_text) = match codec::decode(bytes) {
            Ok(Envelope {
                session,
                message: Message::Open { manifest },
            }) => (SessionId(session), manifest),
            Ok(other) => {
                tracing::warn!(session = other.session, "control pipe: expected Open");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "control pipe: undecodable message");
                return;
            }
        };
        if sessions.contains_key(&id) {
            tracing::warn!(%id, "Open for a session that is already open; ignored");
            return;
        }
        let pipes = match Pipes::open(&self.shared, id) {
            Ok(pipes) => Arc::new(pipes),
            Err(e) => {
                tracing::warn!(%id, error = %e, "could not open the session's pipes");
                return;
            }
        };
        let (abort, aborted) = oneshot::channel();
        let shared = self.shared.clone();
        let finished = finished.clone();
        let task_pipes = pipes.clone();
        let task = tokio::spawn(async move {
            shared.open_sessions.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = run_session(&shared, &task_pipes, id, &manifest_text, aborted).await {
                tracing::warn!(%id, error = %e, "session ended with a link error");
            }
            shared.open_sessions.fetch_sub(1, Ordering::Relaxed);
            let _ = finished.send(id);
        });
        sessions.insert(
            id,
            Running {
                client: id.client(),
                pipes,
                abort,
                task,
                finished: false,
            },
        );
    }

    /// Aborts the sessions whose client process died or dropped the session without `Close`
    /// (its end of the down pipe is gone), and lets go of finished sessions' pipes once their
    /// client has.
    fn reap(&self, sessions: &mut HashMap<SessionId, Running>) {
        if sessions.is_empty() {
            return;
        }
        let link = &self.shared.link;
        let prefix = link.client_node_prefix();
        let live = match live_nodes(self.shared.node.config(), |n| n.starts_with(&prefix)) {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(error = %e, "could not list client nodes");
                return;
            }
        };
        let alive: std::collections::HashSet<u32> = live
            .iter()
            .filter_map(|n| link.client_of_node(&n.name))
            .collect();
        let mut reclaimed = 0;
        sessions.retain(|_, running| {
            !running.finished
                || (alive.contains(&running.client) && running.pipes.down.reader_connected())
        });
        for (id, running) in sessions.iter_mut() {
            let reason = if !alive.contains(&running.client) {
                "client process died"
            } else if !running.pipes.down.reader_connected() {
                "client dropped the session"
            } else {
                continue;
            };
            let (spent, _) = oneshot::channel();
            let abort = std::mem::replace(&mut running.abort, spent);
            if abort.send(reason.to_owned()).is_ok() {
                tracing::info!(%id, reason, "reclaiming session");
                reclaimed += 1;
            }
        }
        if reclaimed > 0 {
            let _ = self.shared.node.try_cleanup_dead_nodes();
        }
    }
}

/// A session's task and how to abort it.
struct Running {
    client: u32,
    pipes: Arc<Pipes>,
    abort: oneshot::Sender<String>,
    task: tokio::task::JoinHandle<()>,
    /// The task is done; the pipes stay until the client lets go (see the module docs).
    finished: bool,
}

/// The worker's ends of a session's pipes.
struct Pipes {
    up: PipeReader,
    down: PipeWriter,
}

impl Pipes {
    fn open(shared: &Shared, id: SessionId) -> Result<Self, IpcError> {
        let link = &shared.link;
        let client_inbox = link.client_inbox(id.client());
        let mine = id.worker_slots();
        let theirs = id.client_slots();
        let up = PipeReader::open(
            &shared.node,
            &link.up_pipe(id),
            shared.pipe_depth,
            Slots {
                data: mine.data,
                space: theirs.space,
            },
            &client_inbox,
            shared.inbox.clone(),
        )?;
        let down = PipeWriter::open(
            &shared.node,
            &link.down_pipe(id),
            shared.pipe_depth,
            Slots {
                data: theirs.data,
                space: mine.space,
            },
            &client_inbox,
            shared.inbox.clone(),
        )?;
        // The client created its writer before sending Open: connect now, so a Close sent
        // right after `Opened` cannot vanish with a writer dropped before we first receive.
        up.connect()?;
        Ok(Self { up, down })
    }

    async fn send(&self, id: SessionId, message: Message) -> Result<(), IpcError> {
        let bytes = codec::encode(&Envelope {
            session: id.0,
            message,
        })
        .map_err(|e| IpcError::Io {
            what: "encode",
            reason: e.to_string(),
        })?;
        self.down.send(&bytes).await
    }
}

fn resolve_manifest(shared: &Shared, text: &str) -> Result<Arc<Manifest>, RunError> {
    if text.is_empty() {
        return Ok(shared.manifest.clone());
    }
    let checked = check_document(text, Format::detect(None, text), shared.runner.registry());
    match checked.manifest {
        Some(m) if !checked.report.has_errors() => Ok(Arc::new(m)),
        _ => Err(RunError::InvalidManifest(checked.report)),
    }
}

/// How a session's relay ended.
enum Ending {
    /// All outputs delivered and `Closed "completed"` sent.
    Completed,
    /// The client sent `Close`.
    ClosedByClient,
    /// Aborted by the worker (dead client, shutdown).
    Aborted(String),
}

async fn run_session(
    shared: &Shared,
    pipes: &Pipes,
    id: SessionId,
    manifest_text: &str,
    aborted: oneshot::Receiver<String>,
) -> Result<(), IpcError> {
    let opened = resolve_manifest(shared, manifest_text).and_then(|manifest| {
        let session = shared.runner.create_stream_session(&manifest)?;
        Ok((manifest, session))
    });
    let (manifest, session) = match opened {
        Ok(ok) => ok,
        Err(e) => {
            let reason = refusal::encode(&e);
            return pipes.send(id, Message::Closed { reason }).await;
        }
    };
    let manifest_json = serde_json::to_string(manifest.as_ref()).unwrap_or_default();
    pipes
        .send(
            id,
            Message::Opened {
                manifest: manifest_json,
            },
        )
        .await?;
    let ending = tokio::select! {
        result = relay_inputs(pipes, id, &session) => result?,
        result = relay_outputs(pipes, id, &session) => result?,
        reason = aborted => Ending::Aborted(reason.unwrap_or_else(|_| "worker stopped".to_owned())),
    };
    session.close().await;
    match ending {
        Ending::Completed | Ending::ClosedByClient => {}
        Ending::Aborted(reason) => {
            tracing::debug!(%id, %reason, "session aborted");
            // The client may be dead and its buffer full: do not wait long to say goodbye.
            let farewell = pipes.send(id, Message::Closed { reason });
            let _ = tokio::time::timeout(FAREWELL_TIMEOUT, farewell).await;
        }
    }
    Ok(())
}

/// Client → pipeline. Returns only when the client closes (or the pipe fails); after
/// `EndInput` it keeps listening for `Close`.
async fn relay_inputs(
    pipes: &Pipes,
    id: SessionId,
    session: &PipelineSession,
) -> Result<Ending, IpcError> {
    loop {
        let bytes = pipes.up.recv().await?;
        let message = match codec::decode(&bytes) {
            Ok(envelope) => envelope.message,
            Err(e) => {
                let message = format!("undecodable input: {e}");
                pipes.send(id, session_error(None, message)).await?;
                continue;
            }
        };
        match message {
            Message::Input(item) => {
                let sequence = item.sequence;
                match session.send_input(item).await {
                    Ok(()) => {}
                    Err(SessionError::Closed { .. }) => return Ok(Ending::ClosedByClient),
                    Err(e) => {
                        pipes
                            .send(id, session_error(sequence, e.to_string()))
                            .await?;
                    }
                }
            }
            Message::EndInput => session.end_input().await,
            Message::Close => return Ok(Ending::ClosedByClient),
            other => {
                let message = format!("unexpected message from client: {other:?}");
                pipes.send(id, session_error(None, message)).await?;
            }
        }
    }
}

/// Pipeline → client, then `Closed "completed"`.
async fn relay_outputs(
    pipes: &Pipes,
    id: SessionId,
    session: &PipelineSession,
) -> Result<Ending, IpcError> {
    loop {
        let message = match session.recv_output().await {
            Ok(Some(SessionOutput::Data { node_id, data })) => Message::Output {
                node: node_id,
                item: data,
            },
            Ok(Some(SessionOutput::Error(f))) => Message::Error {
                node: f.node_id,
                sequence: f.sequence,
                message: f.message,
            },
            Ok(None) => {
                let reason = "completed".to_owned();
                pipes.send(id, Message::Closed { reason }).await?;
                return Ok(Ending::Completed);
            }
            Err(e) => {
                let reason = e.to_string();
                pipes.send(id, Message::Closed { reason }).await?;
                return Ok(Ending::Completed);
            }
        };
        pipes.send(id, message).await?;
    }
}

/// An error item about the session itself (no node).
fn session_error(sequence: Option<u64>, message: String) -> Message {
    Message::Error {
        node: String::new(),
        sequence,
        message,
    }
}
