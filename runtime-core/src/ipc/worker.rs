//! The worker: serves a [`PipelineRunner`] on a link to any number of client processes.
//!
//! Clients write `Open` to the link's control pipe; the worker answers on that client's pipe
//! pair (`Opened` or a refusal in `Closed`), opening its ends of the pair on the client's
//! first `Open`, then relays items between the pipes and a
//! [`PipelineSession`](crate::PipelineSession) until the outputs end (`Closed(Completed)`),
//! the client sends `Close`, or the client process dies: every
//! [`WorkerOptions::reap_interval`] the worker lists live client nodes and reclaims the
//! sessions of dead ones (and of clients that let go of their pipes), then removes what they
//! left in shared memory.
//!
//! Per client, one task reads the up pipe and routes messages to session tasks, and one
//! writes the down pipe for all of them ([`super::mux`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use iceoryx2::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::codec::{self, Ending, Envelope, Message};
use super::link::{self, LinkName, SessionId};
use super::liveness::live_nodes;
use super::mux::{
    Inbound, Outbox, OutboxError, OwnedTask, RouteEnded, Routes, SendCredits, spawn_demux,
};
use super::pipe::{Inbox, Ipc, IpcError, PipeReader, PipeWriter, Slots, create_node};
use super::refusal;
use crate::manifest::{Format, Manifest, check_document};
use crate::plan::PipelinePlan;
use crate::transport::{RunError, SessionError, SessionOutput, StreamSession};
use crate::{PipelineRunner, PipelineSession};

/// Tunables of a [`Worker`].
#[derive(Clone, Copy, Debug)]
pub struct WorkerOptions {
    /// Messages a client's pipes buffer before the writer waits; must equal the clients'
    /// [`ClientOptions::pipe_depth`](super::ClientOptions).
    pub pipe_depth: usize,
    /// How often dead clients are looked for (their sessions are reclaimed within this).
    pub reap_interval: Duration,
    /// How long the reader of a client's pipe polls while it is busy before sleeping
    /// ([`SPIN`](super::pipe::SPIN); zero never polls).
    pub spin: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            pipe_depth: link::PIPE_DEPTH,
            reap_interval: Duration::from_millis(500),
            spin: super::pipe::SPIN,
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
    /// The pipeline to serve does not plan against the runner's node types.
    #[error("the pipeline to serve: {0}")]
    Pipeline(#[source] RunError),
}

/// Control messages queued in the worker's control buffer before clients retry.
const CONTROL_DEPTH: usize = 64;
/// Client processes that may write to one worker's control pipe.
const MAX_CLIENTS: usize = 200;
/// How long the last messages to a client (farewells at shutdown) may take to be written.
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
    /// The served pipeline, planned once at bind.
    served: Arc<PipelinePlan>,
    /// JSON of the served manifest, for `Opened`.
    served_json: String,
    /// JSON of the runner's node catalog, built once: the answer to every `Describe`.
    catalog: String,
    pipe_depth: usize,
    /// How long client pipes' readers poll while busy.
    spin: Duration,
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
        let served = runner.plan(manifest).map_err(WorkerError::Pipeline)?;
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
                catalog: runner.registry().catalog().to_json(),
                served_json: serde_json::to_string(served.manifest().as_ref()).unwrap_or_default(),
                served,
                runner,
                pipe_depth: options.pipe_depth,
                spin: options.spin,
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
        let mut state = State::default();
        let (finished_tx, mut finished) = mpsc::unbounded_channel::<SessionId>();
        let mut reap = tokio::time::interval(self.options.reap_interval);
        reap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let result = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                received = self.control.recv() => match received {
                    Ok(bytes) => self.on_control(&bytes, &mut state, &finished_tx),
                    Err(e) => break Err(e.into()),
                },
                Some(id) = finished.recv() => {
                    state.sessions.remove(&id);
                }
                _ = reap.tick() => self.reap(&mut state),
            }
        };
        for (_, running) in state.sessions.drain() {
            let _ = running.abort.send("worker shutting down".to_owned());
            let _ = running.task.await;
        }
        for (_, client) in state.clients.drain() {
            client.flush().await;
        }
        result
    }

    fn on_control(
        &self,
        bytes: &[u8],
        state: &mut State,
        finished: &mpsc::UnboundedSender<SessionId>,
    ) {
        let (id, manifest_text) = match codec::decode(bytes) {
            Ok(Envelope {
                session,
                message: Message::Open { manifest },
            }) => (SessionId(session), manifest),
            Ok(Envelope {
                session,
                message: Message::Describe,
            }) => return self.describe(SessionId(session), state),
            Ok(other) => {
                tracing::warn!(
                    session = other.session,
                    "control pipe: expected Open or Describe"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "control pipe: undecodable message");
                return;
            }
        };
        let Some(client) = self.client_pipes(id, state) else {
            return;
        };
        let outbox = client.outbox.clone();
        let Some((inbound, credits)) = client.routes.add(id) else {
            tracing::warn!(%id, "Open for a session that is already open; ignored");
            return;
        };
        let link = SessionLink {
            id,
            outbox,
            routes: client.routes.clone(),
            credits,
        };
        let (abort, aborted) = oneshot::channel();
        let shared = self.shared.clone();
        let finished = finished.clone();
        let task = tokio::spawn(async move {
            shared.open_sessions.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = run_session(&shared, &link, inbound, &manifest_text, aborted).await {
                tracing::warn!(%id, error = %e, "session ended with a link error");
            }
            link.routes.remove(id);
            shared.open_sessions.fetch_sub(1, Ordering::Relaxed);
            let _ = finished.send(id);
        });
        state.sessions.insert(id, Running { abort, task });
    }

    /// The pipes of the client that sent `id`, opened on its first message.
    fn client_pipes<'s>(&self, id: SessionId, state: &'s mut State) -> Option<&'s mut ClientPipes> {
        match state.clients.entry(id.client()) {
            std::collections::hash_map::Entry::Occupied(known) => Some(known.into_mut()),
            std::collections::hash_map::Entry::Vacant(new) => {
                match ClientPipes::open(&self.shared, id.client()) {
                    Ok(pipes) => Some(new.insert(pipes)),
                    Err(e) => {
                        tracing::warn!(%id, error = %e, "could not open the client's pipes");
                        None
                    }
                }
            }
        }
    }

    /// Answers `Describe` with the node catalog; no session opens.
    fn describe(&self, id: SessionId, state: &mut State) {
        let Some(client) = self.client_pipes(id, state) else {
            return;
        };
        let catalog = Message::Catalog {
            catalog: self.shared.catalog.clone(),
        };
        if let Err(e) = client.outbox.send(id, catalog) {
            tracing::warn!(%id, error = %e, "could not send the node catalog");
        }
    }

    /// Aborts the sessions of clients whose process died or that let go of their pipes,
    /// and closes those clients' pipes.
    fn reap(&self, state: &mut State) {
        if state.clients.is_empty() {
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
        let mut gone = Vec::new();
        state.clients.retain(|client, pipes| {
            let reason = if !alive.contains(client) {
                "client process died"
            } else if !pipes.down.reader_connected() {
                "client dropped its link"
            } else {
                return true;
            };
            gone.push((*client, reason));
            false
        });
        for (client, reason) in &gone {
            for (id, running) in &mut state.sessions {
                if id.client() != *client {
                    continue;
                }
                let (spent, _) = oneshot::channel();
                let abort = std::mem::replace(&mut running.abort, spent);
                if abort.send((*reason).to_owned()).is_ok() {
                    tracing::info!(%id, reason, "reclaiming session");
                }
            }
        }
        if !gone.is_empty() {
            let _ = self.shared.node.try_cleanup_dead_nodes();
        }
    }
}

/// What [`Worker::serve`] keeps track of.
#[derive(Default)]
struct State {
    sessions: HashMap<SessionId, Running>,
    clients: HashMap<u32, ClientPipes>,
}

/// A session's task and how to abort it.
struct Running {
    abort: oneshot::Sender<String>,
    task: tokio::task::JoinHandle<()>,
}

/// The worker's ends of one client's pipe pair, and the tasks moving messages on them.
struct ClientPipes {
    /// Kept to see whether the client still holds its end.
    down: Arc<PipeWriter>,
    outbox: Outbox,
    routes: Arc<Routes>,
    writer: OwnedTask,
    _reader: OwnedTask,
}

impl ClientPipes {
    fn open(shared: &Shared, client: u32) -> Result<Self, IpcError> {
        let link = &shared.link;
        let worker = shared.node.id().value();
        let client_inbox = link.client_inbox(client);
        let mine = link::worker_slots(client);
        let theirs = link::client_slots();
        let up = PipeReader::open(
            &shared.node,
            &link.up_pipe(worker, client),
            shared.pipe_depth,
            Slots {
                data: mine.data,
                space: theirs.space,
            },
            &client_inbox,
            shared.inbox.clone(),
        )?
        .with_spin(shared.spin);
        let down_name = link.down_pipe(worker, client);
        let down = Arc::new(PipeWriter::open(
            &shared.node,
            &down_name,
            shared.pipe_depth,
            Slots {
                data: theirs.data,
                space: mine.space,
            },
            &client_inbox,
            shared.inbox.clone(),
        )?);
        // The client created its writer before sending Open: connect now, so nothing it
        // sends can be missed by a reader that has not looked for writers yet.
        up.connect()?;
        let (outbox, writer) = Outbox::spawn(down.clone(), down_name);
        let routes = Arc::new(Routes::default());
        // Messages for sessions that ended (inputs in flight, credits) are dropped.
        let reader = spawn_demux(
            up,
            routes.clone(),
            |_, _| {},
            format!("client {client:08x}"),
        );
        Ok(Self {
            down,
            outbox,
            routes,
            writer,
            _reader: reader,
        })
    }

    /// Lets the writer send what is queued (every session task has ended), for a while.
    async fn flush(self) {
        let Self { outbox, writer, .. } = self;
        // The last sender: with it gone the writer ends once the queue is written.
        drop(outbox);
        writer.finish_within(FAREWELL_TIMEOUT).await;
    }
}

/// A session's way to its client: the client's outbox, and this session's credits for
/// sending outputs.
struct SessionLink {
    id: SessionId,
    outbox: Outbox,
    routes: Arc<Routes>,
    credits: SendCredits,
}

impl SessionLink {
    fn send(&self, message: Message) -> Result<(), OutboxError> {
        self.outbox.send(self.id, message)
    }
}

/// The plan a session opens: the served one, planned at bind, or the client's manifest,
/// checked (once, with lines) and planned here.
fn resolve_plan(shared: &Shared, text: &str) -> Result<(Arc<PipelinePlan>, String), RunError> {
    if text.is_empty() {
        return Ok((shared.served.clone(), shared.served_json.clone()));
    }
    let registry = shared.runner.registry();
    let checked = check_document(text, Format::detect(None, text), registry);
    match checked.manifest {
        Some(m) if !checked.report.has_errors() => {
            let json = serde_json::to_string(&m).unwrap_or_default();
            Ok((
                Arc::new(PipelinePlan::resolve(Arc::new(m), registry)?),
                json,
            ))
        }
        _ => Err(RunError::InvalidManifest(checked.report)),
    }
}

/// How a session's relay ended.
enum Relay {
    /// All outputs delivered (or the pipeline failed) and `Closed` sent.
    Completed,
    /// The client sent `Close`.
    ClosedByClient,
    /// Aborted by the worker (dead client, shutdown).
    Aborted(String),
}

async fn run_session(
    shared: &Shared,
    link: &SessionLink,
    mut inbound: Inbound,
    manifest_text: &str,
    aborted: oneshot::Receiver<String>,
) -> Result<(), OutboxError> {
    let opened = resolve_plan(shared, manifest_text).and_then(|(plan, json)| {
        let session = shared.runner.start(&plan)?;
        Ok((json, session))
    });
    let (manifest_json, session) = match opened {
        Ok(ok) => ok,
        Err(e) => return link.send(Message::Closed(Ending::Refused(refusal::refusal_of(e)))),
    };
    link.send(Message::Opened {
        manifest: manifest_json,
    })?;
    let close_requested = inbound.close_requested();
    let relay = tokio::select! {
        result = relay_inputs(link, &mut inbound, &session) => result?,
        result = relay_outputs(link, &session) => result?,
        // The client's `Close` overtakes inputs queued behind a full pipeline (a client that
        // stopped reading outputs has its pipeline blocked on it).
        () = close_requested => Relay::ClosedByClient,
        reason = aborted => Relay::Aborted(reason.unwrap_or_else(|_| "worker stopped".to_owned())),
    };
    session.close().await;
    match relay {
        Relay::Completed | Relay::ClosedByClient => Ok(()),
        Relay::Aborted(reason) => {
            tracing::debug!(id = %link.id, %reason, "session aborted");
            link.send(Message::Closed(Ending::Aborted { reason }))
        }
    }
}

/// Client → pipeline. Returns only when the client closes (or its pipe goes away); after
/// `EndInput` it keeps listening for `Close`. Each input's credit is returned once the
/// pipeline took it.
async fn relay_inputs(
    link: &SessionLink,
    inbound: &mut Inbound,
    session: &PipelineSession,
) -> Result<Relay, OutboxError> {
    loop {
        let delivery = match inbound.recv().await {
            Ok(delivery) => delivery,
            Err(RouteEnded::Dropped) => {
                return Ok(Relay::Aborted("the client's pipes closed".to_owned()));
            }
            Err(overrun @ RouteEnded::Overrun) => {
                tracing::warn!(id = %link.id, "client ignored its credits; ending the session");
                return Ok(Relay::Aborted(overrun.to_string()));
            }
        };
        let message = match delivery {
            Ok(message) => message,
            Err(e) => {
                link.send(session_error(None, format!("undecodable input: {e}")))?;
                continue;
            }
        };
        match message {
            Message::Input(item) => {
                let sequence = item.sequence;
                let sent = session.send_input(item).await;
                if let Some(credit) = inbound.took_item() {
                    link.send(credit)?;
                }
                match sent {
                    Ok(()) => {}
                    Err(SessionError::Closed { .. }) => return Ok(Relay::ClosedByClient),
                    Err(e) => link.send(session_error(sequence, e.to_string()))?,
                }
            }
            Message::EndInput => session.end_input().await,
            Message::Close => return Ok(Relay::ClosedByClient),
            other => {
                let message = format!("unexpected message from client: {other:?}");
                link.send(session_error(None, message))?;
            }
        }
    }
}

/// Pipeline → client, each output or error spending one of the client's credits, then
/// `Closed(Completed)`.
async fn relay_outputs(
    link: &SessionLink,
    session: &PipelineSession,
) -> Result<Relay, OutboxError> {
    loop {
        // Who to name if the output cannot cross the link.
        let mut origin = None;
        let message = match session.recv_output().await {
            Ok(Some(SessionOutput::Data { node_id, data })) => {
                origin = Some((node_id.clone(), data.sequence));
                Message::Output {
                    node: node_id,
                    item: data,
                }
            }
            Ok(Some(SessionOutput::Error(f))) => Message::Error {
                node: Some(f.node_id),
                sequence: f.sequence,
                message: f.message,
            },
            Ok(None) => {
                link.send(Message::Closed(Ending::Completed))?;
                return Ok(Relay::Completed);
            }
            // The pipeline failed as a whole: the client hears why, and nothing more is sent.
            Err(e) => {
                let reason = e.to_string();
                link.send(Message::Closed(Ending::Aborted { reason }))?;
                return Ok(Relay::Completed);
            }
        };
        match link.credits.spend().await {
            Ok(()) => {}
            // The route is gone: the client broke flow control (the same reason whichever
            // relay notices first), or its pipes are being torn down.
            Err(overrun @ RouteEnded::Overrun) => return Ok(Relay::Aborted(overrun.to_string())),
            Err(RouteEnded::Dropped) => {
                return Ok(Relay::Aborted("the client's pipes closed".to_owned()));
            }
        }
        match (link.send(message), origin) {
            // Too large for the link: the client hears which node's output, and goes on.
            (Err(OutboxError::Encode(e)), Some((node, sequence))) => {
                link.send(Message::Error {
                    message: format!("the output of node '{node}' was not delivered: {e}"),
                    node: Some(node),
                    sequence,
                })?;
            }
            (sent, _) => sent?,
        }
    }
}

/// An error item about the session itself (no node).
fn session_error(sequence: Option<u64>, message: String) -> Message {
    Message::Error {
        node: None,
        sequence,
        message,
    }
}
