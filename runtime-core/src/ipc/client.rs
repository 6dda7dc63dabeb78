//! The client side of a link: [`IpcRunner`] reaches a [`Worker`](super::Worker) in another
//! process and implements [`PipelineTransport`] over it, so code written against the traits
//! runs the same in-process or across the pod link.
//!
//! Each client process has one iceoryx2 node and one inbox, and per worker one pipe pair that
//! all its sessions share (see [`super::link`] and [`super::mux`]). A watcher task checks
//! every [`ClientOptions::watch_interval`] that the worker it opened sessions on is still
//! alive; when it dies, every session's pending and later calls fail with
//! [`SessionError::Aborted`], and the next `stream` connects to whichever worker serves the
//! link by then.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use iceoryx2::prelude::*;
use tokio::sync::watch;

use super::codec::{DecodeError, Message};
use super::link::{self, LinkName, SessionId};
use super::liveness::{LiveNode, live_nodes};
use super::mux::{Delivery, Inbound, Outbox, OwnedTask, Routes, SendCredits, encode, spawn_demux};
use super::pipe::{Inbox, Ipc, IpcError, PipeReader, PipeWriter, Slots, create_node};
use super::refusal;

mod session;

use crate::manifest::Manifest;
use crate::nodes::{NodeCatalog, NodeRegistry};
use crate::transport::{OpenedSession, PipelineTransport, RunError};
pub use session::IpcSession;

/// Tunables of an [`IpcRunner`].
#[derive(Clone, Copy, Debug)]
pub struct ClientOptions {
    /// Messages the client's pipes buffer (all sessions together) before the writer waits;
    /// must equal the worker's [`WorkerOptions::pipe_depth`](super::WorkerOptions).
    pub pipe_depth: usize,
    /// How long to wait for the worker to answer an Open.
    pub open_timeout: Duration,
    /// How often the worker's liveness is checked (its death is noticed within this).
    pub watch_interval: Duration,
    /// How long a unary call may take, as [`RunnerConfig::unary_deadline`](crate::RunnerConfig).
    pub unary_deadline: Duration,
    /// How long the reader of the worker's pipe polls while it is busy before sleeping
    /// ([`SPIN`](super::pipe::SPIN); zero never polls).
    pub spin: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            pipe_depth: link::PIPE_DEPTH,
            open_timeout: Duration::from_secs(5),
            watch_interval: Duration::from_millis(200),
            unary_deadline: Duration::from_secs(30),
            spin: super::pipe::SPIN,
        }
    }
}

/// Runs pipelines in the worker serving a link. Cheap to clone; clones share the process's
/// iceoryx2 node and inbox.
#[derive(Clone)]
pub struct IpcRunner {
    client: Arc<Client>,
}

struct Client {
    link: LinkName,
    id: u32,
    node: Node<Ipc>,
    inbox: Arc<Inbox>,
    next_session: AtomicU32,
    options: ClientOptions,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

/// The worker this client currently talks to, and the pipes to it.
struct Connection {
    worker: LiveNode,
    control: PipeWriter,
    up: Outbox,
    routes: Arc<Routes>,
    lost: watch::Receiver<Option<String>>,
    /// The worker's node catalog and the node types it describes, once asked for.
    described: std::sync::OnceLock<(Arc<NodeCatalog>, Arc<NodeRegistry>)>,
    /// Writer, reader and worker watcher; they stop with the connection.
    _tasks: [OwnedTask; 3],
}

impl IpcRunner {
    /// Joins `link` as a client: creates this process's node and inbox. Sessions are opened
    /// (and the worker looked for) by [`stream`](PipelineTransport::stream) and friends.
    ///
    /// # Errors
    /// iceoryx2 failed.
    pub fn connect(link: LinkName, options: ClientOptions) -> Result<Self, IpcError> {
        let id = uuid::Uuid::new_v4().as_u128() as u32;
        let (node, _cleaned) = create_node(&link.client_node(id))?;
        let inbox = Arc::new(Inbox::create(
            &node,
            &link.client_inbox(id),
            link::CLIENT_INBOX_SLOTS,
        )?);
        Ok(Self {
            client: Arc::new(Client {
                link,
                id,
                node,
                inbox,
                next_session: AtomicU32::new(0),
                options,
                connection: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// The link this runner reaches.
    #[must_use]
    pub fn link(&self) -> &LinkName {
        &self.client.link
    }

    /// Whether a live worker serves the link now (connecting to it if need be): what a
    /// sidecar's health check reports.
    ///
    /// # Errors
    /// [`RunError::Unavailable`] naming the link when no live worker serves it.
    pub async fn reachable(&self) -> Result<(), RunError> {
        self.connection().await.map(|_| ())
    }

    /// Opens a session on the pipeline the worker serves.
    ///
    /// # Errors
    /// [`RunError::Unavailable`] when no live worker serves the link or it does not answer;
    /// otherwise whatever the worker's runner returned.
    pub async fn stream_served(&self) -> Result<IpcSession, RunError> {
        self.open_text(String::new()).await
    }

    /// Opens a session running `manifest` in the worker.
    ///
    /// # Errors
    /// As [`IpcRunner::stream_served`].
    pub async fn stream_manifest(&self, manifest: &Manifest) -> Result<IpcSession, RunError> {
        let text = serde_json::to_string(manifest).map_err(|e| RunError::Refused {
            reason: format!("manifest could not be encoded: {e}"),
        })?;
        self.open_text(text).await
    }

    /// The node types the worker serving the link runs, as it describes them. Asked once per
    /// worker: a restarted worker (perhaps from another image) is asked again.
    ///
    /// # Errors
    /// [`RunError::Unavailable`] when no live worker serves the link or it does not answer;
    /// [`RunError::Refused`] when its answer is not a catalog this build reads.
    pub async fn catalog(&self) -> Result<Arc<NodeCatalog>, RunError> {
        Ok(self.described().await?.0)
    }

    /// The worker's catalog and the node types it describes (to check manifests against),
    /// asked for once per connection.
    async fn described(&self) -> Result<(Arc<NodeCatalog>, Arc<NodeRegistry>), RunError> {
        let connection = self.connection().await?;
        if let Some(described) = connection.described.get() {
            return Ok(described.clone());
        }
        let refused = |e: &dyn std::fmt::Display| RunError::Refused {
            reason: format!(
                "the node catalog of the worker of link '{}': {e}",
                self.client.link
            ),
        };
        let asked = self.ask(&connection, Message::Describe).await?;
        let catalog = match asked.answer {
            Ok(Message::Catalog { catalog }) => {
                NodeCatalog::from_json(&catalog).map_err(|e| refused(&e))?
            }
            other => {
                return Err(RunError::Refused {
                    reason: format!("unexpected answer to Describe: {other:?}"),
                });
            }
        };
        let registry = NodeRegistry::from_catalog(&catalog).map_err(|e| refused(&e))?;
        Ok(connection
            .described
            .get_or_init(|| (Arc::new(catalog), Arc::new(registry)))
            .clone())
    }

    async fn open_text(&self, manifest: String) -> Result<IpcSession, RunError> {
        let connection = self.connection().await?;
        let Asked {
            id,
            answer,
            inbound,
            credits,
            pending,
            lost,
        } = self.ask(&connection, Message::Open { manifest }).await?;
        match answer {
            Ok(Message::Opened { manifest }) => {
                pending.disarm();
                let manifest = serde_json::from_str(&manifest).ok();
                Ok(IpcSession::new(
                    id,
                    manifest,
                    inbound,
                    credits,
                    lost,
                    connection.clone(),
                ))
            }
            Ok(Message::Closed(ending)) => Err(refusal::open_error(ending)),
            Ok(other) => Err(RunError::Refused {
                reason: format!("unexpected answer to Open: {other:?}"),
            }),
            Err(e) => Err(RunError::Refused {
                reason: format!("undecodable answer to Open: {e}"),
            }),
        }
    }

    /// Sends `message` (Open or Describe) for a fresh session id on the worker's control pipe
    /// and waits for the first answer under that id.
    async fn ask<'c>(
        &self,
        connection: &'c Connection,
        message: Message,
    ) -> Result<Asked<'c>, RunError> {
        let client = &self.client;
        let id = SessionId::new(
            client.id,
            client.next_session.fetch_add(1, Ordering::Relaxed),
        );
        let unavailable = |e: IpcError| RunError::Unavailable {
            reason: format!("link '{}': {}", client.link, crate::report::chain(&e)),
        };
        // Routed before the message goes out, so the answer finds its way. Until a session is
        // handed out, dropping `pending` unroutes it; a late `Opened` is then answered with
        // `Close` (see `Connection::open`).
        let (mut inbound, credits) =
            connection
                .routes
                .add(id)
                .ok_or_else(|| RunError::Unavailable {
                    reason: format!("session id {id} is already in use"),
                })?;
        let pending = Unroute {
            routes: &connection.routes,
            id,
            armed: true,
        };
        let request = encode(id, message).map_err(|e| RunError::Refused {
            reason: format!("the request could not be encoded: {e}"),
        })?;
        let mut lost = connection.lost.clone();
        let answer = async {
            connection
                .control
                .send(&request)
                .await
                .map_err(unavailable)?;
            Ok::<_, RunError>(inbound.recv().await)
        };
        let answer = tokio::select! {
            answer = tokio::time::timeout(client.options.open_timeout, answer) => answer,
            reason = wait_lost(&mut lost) => return Err(RunError::Unavailable { reason }),
        };
        let delivery = match answer {
            Ok(delivery) => delivery?,
            Err(_elapsed) => {
                return Err(RunError::Unavailable {
                    reason: format!(
                        "the worker of link '{}' (pid {}) did not answer within {:?}",
                        client.link, connection.worker.pid, client.options.open_timeout
                    ),
                });
            }
        };
        let answer = delivery.map_err(|ended| RunError::Unavailable {
            reason: format!("link '{}': {ended}", client.link),
        })?;
        Ok(Asked {
            id,
            answer,
            inbound,
            credits,
            pending,
            lost,
        })
    }

    /// The live connection, or a new one to the worker serving the link now.
    async fn connection(&self) -> Result<Arc<Connection>, RunError> {
        let client = &self.client;
        let mut current = client.connection.lock().await;
        if let Some(connection) = current.as_ref()
            && connection.lost.borrow().is_none()
        {
            return Ok(connection.clone());
        }
        *current = None;
        let worker_name = client.link.worker_node();
        let unavailable = |e: IpcError| RunError::Unavailable {
            reason: format!("link '{}': {}", client.link, crate::report::chain(&e)),
        };
        let workers =
            live_nodes(client.node.config(), |name| name == worker_name).map_err(unavailable)?;
        let Some(worker) = workers.into_iter().next() else {
            return Err(RunError::Unavailable {
                reason: format!("no live worker serves link '{}'", client.link),
            });
        };
        let connection = Connection::open(client, worker).map_err(unavailable)?;
        *current = Some(connection.clone());
        Ok(connection)
    }
}

/// The worker's first answer to a request, with the route it came by.
struct Asked<'c> {
    id: SessionId,
    answer: Result<Message, DecodeError>,
    inbound: Inbound,
    credits: SendCredits,
    pending: Unroute<'c>,
    lost: watch::Receiver<Option<String>>,
}

/// Removes a session's route when dropped armed: an open that did not complete.
struct Unroute<'a> {
    routes: &'a Routes,
    id: SessionId,
    armed: bool,
}

impl Unroute<'_> {
    /// The open completed: the session now owns its route.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Unroute<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.routes.remove(self.id);
        }
    }
}

impl Connection {
    /// Creates this client's pipe pair to `worker` (before any Open names it) and the tasks
    /// that write, read and watch.
    fn open(client: &Client, worker: LiveNode) -> Result<Arc<Self>, IpcError> {
        let link = &client.link;
        let worker_inbox = link.worker_inbox();
        let mine = link::client_slots();
        let theirs = link::worker_slots(client.id);
        let depth = client.options.pipe_depth;
        let down = PipeReader::open(
            &client.node,
            &link.down_pipe(worker.id, client.id),
            depth,
            Slots {
                data: mine.data,
                space: theirs.space,
            },
            &worker_inbox,
            client.inbox.clone(),
        )?
        .with_spin(client.options.spin);
        let up_name = link.up_pipe(worker.id, client.id);
        let up_pipe = PipeWriter::open(
            &client.node,
            &up_name,
            depth,
            Slots {
                data: theirs.data,
                space: mine.space,
            },
            &worker_inbox,
            client.inbox.clone(),
        )?;
        let control = PipeWriter::open_shared(
            &client.node,
            &link.control_pipe(),
            64,
            200,
            link::CONTROL_SLOT,
            &worker_inbox,
        )?;
        let (up, writer) = Outbox::spawn(Arc::new(up_pipe), up_name);
        let routes = Arc::new(Routes::default());
        let reader = {
            let up = up.clone();
            let peer = format!("worker pid {}", worker.pid);
            spawn_demux(
                down,
                routes.clone(),
                move |id, d| unrouted(&up, id, &d),
                peer,
            )
        };
        let (lost_tx, lost) = watch::channel(None);
        let watcher = OwnedTask::spawn(watch_worker(
            client.node.config().clone(),
            client.link.clone(),
            worker.clone(),
            client.options.watch_interval,
            lost_tx,
        ));
        Ok(Arc::new(Self {
            worker,
            control,
            up,
            routes,
            lost,
            described: std::sync::OnceLock::new(),
            _tasks: [writer, reader, watcher],
        }))
    }
}

/// A message for a session this client no longer routes. `Opened` means an open that was
/// given up on (timeout, cancelled caller) went through after all: close that session.
fn unrouted(up: &Outbox, id: SessionId, delivery: &Delivery) {
    if let Ok(Message::Opened { .. }) = delivery {
        let _ = up.send(id, Message::Close);
    }
}

/// Polls the worker's node until it is gone, then says so.
async fn watch_worker(
    config: Config,
    link: LinkName,
    worker: LiveNode,
    interval: Duration,
    lost: watch::Sender<Option<String>>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match live_nodes(&config, |name| name == worker.name) {
            Ok(nodes) if nodes.iter().any(|n| n.id == worker.id) => {}
            Ok(_) => {
                let reason = format!("the worker of link '{link}' (pid {}) died", worker.pid);
                tracing::warn!("{reason}");
                let _ = lost.send(Some(reason));
                return;
            }
            Err(e) => tracing::warn!(error = %e, "could not check the worker's liveness"),
        }
    }
}

/// Resolves once the connection is lost, with the reason.
async fn wait_lost(lost: &mut watch::Receiver<Option<String>>) -> String {
    match lost.wait_for(Option::is_some).await {
        Ok(reason) => reason.clone().unwrap_or_default(),
        // The watcher is gone only with the connection; treat as lost.
        Err(_) => "the link's connection was dropped".to_owned(),
    }
}

#[async_trait]
impl PipelineTransport for IpcRunner {
    async fn open(&self, manifest: Option<Arc<Manifest>>) -> Result<OpenedSession, RunError> {
        let session = match &manifest {
            Some(m) => self.stream_manifest(m).await?,
            None => self.stream_served().await?,
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
        Ok(self.described().await?.1)
    }

    async fn ready(&self) -> Result<(), RunError> {
        self.reachable().await
    }

    fn unary_deadline(&self) -> Duration {
        self.client.options.unary_deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::RuntimeData;
    use crate::ipc::{Worker, WorkerOptions};
    use crate::manifest::Format;
    use crate::transport::{SessionError, SessionOutput, StreamSession};
    use crate::{PipelineRunner, TransportData};

    const PASS: &str =
        r#"{"version": "v1", "nodes": [{"id": "pass", "node_type": "PassThrough"}]}"#;
    /// Far beyond what the test needs; only a missing ending would reach it.
    const LIMIT: Duration = Duration::from_secs(30);

    fn text(n: u64) -> TransportData {
        TransportData::new(RuntimeData::Text(format!("item {n}"))).with_sequence(n)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_ignores_its_credits_has_that_session_ended_and_no_other() {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let link = LinkName::new(&format!("t-overrun-{suffix}")).unwrap();
        let runner = PipelineRunner::new();
        let served = Manifest::from_text(PASS, Format::Json, runner.registry()).unwrap();
        let worker = Worker::bind(link.clone(), runner, served, WorkerOptions::default()).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(worker.serve(async {
            let _ = stopped.await;
        }));
        let client = IpcRunner::connect(link, ClientOptions::default()).unwrap();
        let rogue = client.stream_served().await.unwrap();
        let polite = client.stream_served().await.unwrap();

        // Inputs straight onto the pipe without spending credits, outputs never read: the
        // worker's pipeline backs up, and past it the inputs pile up for the session.
        for n in 0..2_000 {
            rogue.send(Message::Input(text(n))).unwrap();
        }
        let ending = tokio::time::timeout(LIMIT, async {
            loop {
                match rogue.recv_output().await {
                    Ok(Some(_)) => {}
                    other => return other,
                }
            }
        })
        .await
        .expect("the worker ended the session");
        assert!(
            matches!(&ending, Err(SessionError::Aborted { reason, .. }) if reason.contains("flow control")),
            "{ending:?}"
        );

        // The other session on the same pipes runs as ever.
        polite.send_input(text(1)).await.unwrap();
        polite.end_input().await;
        let output = polite.recv_output().await.unwrap();
        assert!(
            matches!(&output, Some(SessionOutput::Data { node_id, .. }) if node_id == "pass"),
            "{output:?}"
        );
        assert!(polite.recv_output().await.unwrap().is_none());

        let _ = stop.send(());
        serving.await.unwrap().unwrap();
    }

    /// Items too large for the pod link's shared memory are refused naming the limit, in
    /// either direction, and the session goes on: an input is refused where it is sent; a
    /// node's output (here a chunker's 1 MiB chunk, made of small inputs) becomes an error
    /// item naming the node.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn items_beyond_the_link_limit_are_refused_by_name_and_the_session_goes_on() {
        use crate::AudioBuffer;
        use crate::ipc::link::MAX_MESSAGE_BYTES;

        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let link = LinkName::new(&format!("t-large-{suffix}")).unwrap();
        let runner = PipelineRunner::new();
        let served = Manifest::from_text(
            r#"{"version": "v1", "nodes": [{"id": "window", "node_type": "AudioChunkerNode", "params": {"chunk_size": 262144}}]}"#,
            Format::Json,
            runner.registry(),
        )
        .unwrap();
        let worker = Worker::bind(link.clone(), runner, served, WorkerOptions::default()).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(worker.serve(async {
            let _ = stopped.await;
        }));
        let client = IpcRunner::connect(link, ClientOptions::default()).unwrap();
        let session = client.stream_served().await.unwrap();
        let audio = |frames: usize, sequence: u64| {
            TransportData::new(RuntimeData::Audio(AudioBuffer::new(
                vec![0.1; frames],
                48_000,
                1,
            )))
            .with_sequence(sequence)
        };

        let refused = session
            .send_input(audio(MAX_MESSAGE_BYTES / 4 + 1, 0))
            .await;
        match refused {
            Err(SessionError::InvalidInput(reason)) => {
                assert!(reason.contains("limit of 524288 bytes"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Eleven inputs of 100 KB: the chunker's output of 1 MiB cannot cross the link.
        for n in 1..=11 {
            session.send_input(audio(25_000, n)).await.unwrap();
        }
        let output = tokio::time::timeout(LIMIT, session.recv_output())
            .await
            .unwrap()
            .unwrap();
        match output {
            Some(SessionOutput::Error(failure)) => {
                assert_eq!(failure.node_id, "window");
                assert!(
                    failure.message.contains("pod link's limit"),
                    "{}",
                    failure.message
                );
            }
            other => panic!("{other:?}"),
        }
        session.end_input().await;
        // The session still ends normally (the rest of the audio, under a chunk, is dropped
        // by the chunker at the end or flushed as a smaller chunk).
        loop {
            match tokio::time::timeout(LIMIT, session.recv_output())
                .await
                .unwrap()
            {
                Ok(None) => break,
                Ok(Some(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let _ = stop.send(());
        serving.await.unwrap().unwrap();
    }
}
