//! The runtime's end of one Python node: a [`RemoteNode`] speaking pod-link messages to the
//! node's process over two pipes.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use iceoryx2::prelude::Node as IoxNode;
use serde_json::Value;
use tokio::sync::watch;

use super::PythonOptions;
use super::process::{self, NodeProcess};
use crate::data::{RuntimeData, TransportData};
use crate::ipc::codec::{Ending, Envelope, Message, Refusal, decode, encode};
use crate::ipc::pipe::{
    Doorbell, Inbox, Ipc, IpcError, PipeReader, PipeWriter, Slots, create_node,
};
use crate::nodes::{NodeError, Outputs, RemoteNode};

/// Slots of the runtime's inbox (one per node) and of the node process's.
const OUTPUT_ARRIVED: usize = 0;
const INPUT_ROOM: usize = 1;
const INPUT_ARRIVED: usize = 0;
const OUTPUT_ROOM: usize = 1;

/// Why a node process could not be started.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartError {
    /// This process's iceoryx2 node could not be created.
    #[error("{0}")]
    Host(String),
    /// A pipe or inbox could not be created.
    #[error(transparent)]
    Ipc(#[from] IpcError),
    /// The interpreter could not be spawned.
    #[error("could not spawn the Python interpreter")]
    Spawn(#[from] std::io::Error),
}

/// This process's iceoryx2 node for all its Python node links, created on first use (after
/// cleaning up what dead processes left).
fn host() -> Result<&'static IoxNode<Ipc>, StartError> {
    static HOST: OnceLock<Result<IoxNode<Ipc>, String>> = OnceLock::new();
    let name = format!("remotemedia-python-host.{}", std::process::id());
    HOST.get_or_init(|| {
        create_node(&name)
            .map(|(node, _)| node)
            .map_err(|e| crate::report::chain(&e))
    })
    .as_ref()
    .map_err(|e| StartError::Host(e.clone()))
}

/// Removes the iceoryx2 resources of dead processes (a crashed node process leaves its ports
/// in the services it shared with us).
pub(super) fn clean_up_after_dead_processes() {
    if let Ok(node) = host() {
        let _ = node.try_cleanup_dead_nodes();
    }
}

/// One Python node instance, in its own process: replaced by a fresh one when it does not
/// answer an item within [`PythonOptions::item_timeout`].
pub(super) struct PythonNode {
    label: String,
    name: String,
    params: Value,
    options: PythonOptions,
    link: Link,
    /// What the executor watches: `Some(reason)` once the current process exited while in
    /// use. Fed from each process in turn, so replacing one is not a loss.
    lost: watch::Sender<Option<String>>,
}

/// The pipes to one node process, and the process.
struct Link {
    label: String,
    to_node: PipeWriter,
    from_node: PipeReader,
    /// Keeps the node process's inbox service alive until the link is dropped.
    _node_bell: Doorbell,
    ready: bool,
    startup_timeout: Duration,
    process: NodeProcess,
    /// Copies the process's exit into [`PythonNode::lost`]; aborted with the link.
    forward_exit: tokio::task::JoinHandle<()>,
}

impl PythonNode {
    /// Creates the links, then spawns `python -m remotemedia_nodes serve` for node type
    /// `name` with `params`. The process says it is ready (or why not) on its own time; the
    /// first call waits for that.
    pub(super) fn spawn(
        name: &str,
        params: &Value,
        options: &PythonOptions,
    ) -> Result<Self, StartError> {
        let lost = watch::Sender::new(None);
        let link = Link::spawn(name, params, options, &lost)?;
        Ok(Self {
            label: format!("python:{name}"),
            name: name.to_owned(),
            params: params.clone(),
            options: options.clone(),
            link,
            lost,
        })
    }

    /// Ends the current process (it gets the exit grace, then is killed) and starts a fresh
    /// one with the same params.
    fn replace(&mut self) -> Result<(), NodeError> {
        let fresh =
            Link::spawn(&self.name, &self.params, &self.options, &self.lost).map_err(|e| {
                NodeError::Lost(format!("{}: {}", self.label, crate::report::chain(&e)))
            })?;
        // Dropping the old link asks its process to close and stops forwarding its exit.
        self.link = fresh;
        Ok(())
    }

    /// The process's answer to what was sent, within the item deadline; a process that
    /// misses it is replaced and the item fails naming the node.
    async fn answer(&mut self, out: &mut Outputs) -> Result<(), NodeError> {
        let limit = self.options.item_timeout;
        match tokio::time::timeout(limit, self.link.collect(out)).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(node = %self.label, ?limit, "node process did not answer; replacing it");
                self.replace()?;
                Err(NodeError::Failed(format!(
                    "{} did not answer within {limit:?}; its process was replaced",
                    self.label
                )))
            }
        }
    }
}

impl Link {
    fn spawn(
        name: &str,
        params: &Value,
        options: &PythonOptions,
        lost: &watch::Sender<Option<String>>,
    ) -> Result<Self, StartError> {
        let host = host()?;
        let prefix = format!("remotemedia/py/{}", uuid::Uuid::new_v4().simple());
        let node_inbox = format!("{prefix}/py");
        let depth = options.depth;
        let node_bell = Doorbell::create(host, &node_inbox, 2)?;
        let inbox = Arc::new(Inbox::create(host, &format!("{prefix}/host"), 2)?);
        let to_node = PipeWriter::open(
            host,
            &format!("{prefix}/in"),
            depth,
            Slots {
                data: INPUT_ARRIVED,
                space: INPUT_ROOM,
            },
            &node_inbox,
            inbox.clone(),
        )?;
        let from_node = PipeReader::open(
            host,
            &format!("{prefix}/out"),
            depth,
            Slots {
                data: OUTPUT_ARRIVED,
                space: OUTPUT_ROOM,
            },
            &node_inbox,
            inbox,
        )?;
        let args = [
            "--node-type".to_owned(),
            name.to_owned(),
            "--params".to_owned(),
            params.to_string(),
            "--services".to_owned(),
            prefix,
            "--depth".to_owned(),
            depth.to_string(),
            "--spin-us".to_owned(),
            options.spin.as_micros().to_string(),
        ];
        let label = format!("python:{name}");
        let process = process::spawn(options, &args, label.clone())?;
        let mut exited = process.exited.clone();
        let lost = lost.clone();
        let forward_exit = tokio::spawn(async move {
            if let Ok(reason) = exited.wait_for(Option::is_some).await {
                let reason = reason.clone();
                lost.send_replace(reason);
            }
        });
        Ok(Self {
            label,
            to_node,
            from_node,
            _node_bell: node_bell,
            ready: false,
            startup_timeout: options.startup_timeout,
            process,
            forward_exit,
        })
    }

    /// Waits for the process's first message: `Opened`, or `Closed` with why it could not
    /// start.
    async fn ready(&mut self) -> Result<(), NodeError> {
        if self.ready {
            return Ok(());
        }
        let limit = self.startup_timeout;
        match tokio::time::timeout(limit, self.recv()).await {
            Err(_) => Err(NodeError::Lost(format!(
                "{} did not start within {limit:?}",
                self.label
            ))),
            Ok(Ok(Message::Opened { .. })) => {
                self.ready = true;
                Ok(())
            }
            Ok(Ok(Message::Closed(ending))) => Err(NodeError::Lost(ending_reason(ending))),
            Ok(Ok(other)) => Err(self.confused(&other)),
            Ok(Err(e)) => Err(e),
        }
    }

    async fn send(&mut self, message: Message) -> Result<(), NodeError> {
        let bytes = encode(&Envelope {
            session: 0,
            message,
        })
        .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
        let exited = &mut self.process.exited;
        let sent = tokio::select! {
            biased;
            reason = exited.wait_for(Option::is_some) => Err(exit_reason(reason)),
            sent = self.to_node.send(&bytes) => sent.map_err(|e| NodeError::Lost(format!("{}: {e}", self.label))),
        };
        sent
    }

    async fn recv(&mut self) -> Result<Message, NodeError> {
        let exited = &mut self.process.exited;
        let bytes = tokio::select! {
            biased;
            reason = exited.wait_for(Option::is_some) => Err(exit_reason(reason)),
            bytes = self.from_node.recv() => bytes.map_err(|e| NodeError::Lost(format!("{}: {e}", self.label))),
        }?;
        decode(&bytes).map(|e| e.message).map_err(|e| {
            NodeError::Lost(format!("{} sent an undecodable message: {e}", self.label))
        })
    }

    /// Collects what the process sends for one input, up to its `Done`. An `Error` fails the
    /// item after its outputs have been kept.
    async fn collect(&mut self, out: &mut Outputs) -> Result<(), NodeError> {
        let mut failure = None;
        loop {
            match self.recv().await? {
                Message::Output { item, .. } => out.push(item.data),
                Message::Error { message, .. } => failure = Some(message),
                Message::Done => return failure.map_or(Ok(()), |m| Err(NodeError::Failed(m))),
                Message::Closed(ending) => return Err(NodeError::Lost(ending_reason(ending))),
                other => return Err(self.confused(&other)),
            }
        }
    }

    fn confused(&self, message: &Message) -> NodeError {
        NodeError::Lost(format!(
            "{} sent a message out of turn: {message:?}",
            self.label
        ))
    }
}

/// Why a node process said `Closed`: it could not start (a refusal naming why) or stopped.
fn ending_reason(ending: Ending) -> String {
    match ending {
        Ending::Refused(Refusal::NodeStart { reason, .. } | Refusal::Other { reason })
        | Ending::Aborted { reason } => reason,
        Ending::Refused(refusal) => format!("the node process refused to start: {refusal:?}"),
        Ending::Completed => "the node process ended".to_owned(),
    }
}

fn exit_reason(
    reason: Result<watch::Ref<'_, Option<String>>, watch::error::RecvError>,
) -> NodeError {
    NodeError::Lost(reason.map_or_else(
        |_| "the process watcher stopped".to_owned(),
        |r| r.clone().unwrap_or_default(),
    ))
}

#[async_trait]
impl RemoteNode for PythonNode {
    async fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        self.link.ready().await?;
        self.link
            .send(Message::Input(TransportData::new(input)))
            .await?;
        self.answer(out).await
    }

    async fn finish(&mut self, out: &mut Outputs) -> Result<(), NodeError> {
        self.link.ready().await?;
        self.link.send(Message::EndInput).await?;
        self.answer(out).await
    }

    fn lost(&self) -> watch::Receiver<Option<String>> {
        self.lost.subscribe()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Ask the process to end as after a normal session; should Close not fit, stdin
        // closing right after (as the fields drop) ends it too.
        if let Ok(bytes) = encode(&Envelope {
            session: 0,
            message: Message::Close,
        }) {
            let _ = self.to_node.try_send(&bytes);
        }
        self.forward_exit.abort();
    }
}
