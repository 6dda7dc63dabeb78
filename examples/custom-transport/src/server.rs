//! The transport: every connection to the socket is one streaming session.

use std::future::Future;
use std::sync::Arc;

use remotemedia_runtime_core::manifest::{self, Manifest};
use remotemedia_runtime_core::{PipelineTransport, RunError, SessionError, StreamSession};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::protocol::{ClientLine, ServerLine};

/// Lines queued for a client before the session waits for it to read.
const WRITE_QUEUE: usize = 64;

/// What the server allows. The pipeline of connections that do not open their own, and the
/// node types client manifests are checked against, are the transport's.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeOptions {
    /// Whether a connection may send `{"open": {"manifest": ...}}`.
    pub allow_client_manifests: bool,
}

/// Serves `transport` on `listener` until `shutdown` resolves; open sessions are then closed
/// (their clients get `{"kind":"closed","reason":"shutdown"}`).
pub async fn serve(
    listener: UnixListener,
    transport: Arc<dyn PipelineTransport>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (read, write) = stream.into_split();
                    let (transport, stop) = (transport.clone(), stop_rx.clone());
                    tokio::spawn(connection(read, write, transport, options, stop));
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
        }
    }
    let _ = stop_tx.send(true);
}

async fn connection(
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    transport: Arc<dyn PipelineTransport>,
    options: ServeOptions,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let (lines_tx, lines_rx) = mpsc::channel(WRITE_QUEUE);
    let writer = tokio::spawn(write_lines(write, lines_rx));
    let mut lines = BufReader::new(read).lines();
    let mut line_no = 0u64;

    // The first line may open the session with the client's own manifest.
    let Ok(Some(first)) = lines.next_line().await else {
        return;
    };
    line_no += 1;
    let (manifest, pending) = match serde_json::from_str::<ClientLine>(&first) {
        Ok(ClientLine::Open { open }) => {
            match client_manifest(transport.as_ref(), options, &open.manifest).await {
                Ok(m) => (Some(m), None),
                Err(reason) => return finish(lines_tx, writer, format!("failed: {reason}")).await,
            }
        }
        // Not an `open`: the session runs the served pipeline, and this line is its first.
        _ => (None, Some(first)),
    };
    let session: Arc<dyn StreamSession> = match transport.open(manifest).await {
        Ok(opened) => Arc::from(opened.session),
        Err(RunError::NothingServed) => {
            let reason = "failed: this server has no pipeline of its own; open one first";
            return finish(lines_tx, writer, reason.to_owned()).await;
        }
        Err(e) => return finish(lines_tx, writer, format!("failed: {e}")).await,
    };
    let ready = ServerLine::Ready {
        session_id: session.session_id().to_owned(),
    };
    if lines_tx.send(ready).await.is_err() {
        return;
    }

    let input = tokio::spawn(read_input(
        lines,
        pending,
        line_no,
        session.clone(),
        lines_tx.clone(),
    ));
    let reason = loop {
        tokio::select! {
            () = stopped(&mut stop) => break "shutdown".to_owned(),
            output = session.recv_output() => match output {
                Ok(Some(output)) => {
                    if lines_tx.send(output.into()).await.is_err() {
                        break "client gone".to_owned();
                    }
                }
                Ok(None) => break "completed".to_owned(),
                Err(e) => break format!("failed: {e}"),
            },
        }
    };
    session.close().await;
    input.abort();
    let _ = input.await; // drops its sender, so the writer can finish
    finish(lines_tx, writer, reason).await;
}

/// Resolves once the server shuts down.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    // The borrow `wait_for` returns is not Send: drop it here, not across the caller's await.
    let _ = stop.wait_for(|stopped| *stopped).await.map(|_| ());
}

/// Feeds the session from the client's lines; end of file ends the input.
async fn read_input(
    mut lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    mut pending: Option<String>,
    mut line_no: u64,
    session: Arc<dyn StreamSession>,
    out: mpsc::Sender<ServerLine>,
) {
    loop {
        let line = match pending.take() {
            Some(line) => line,
            None => match lines.next_line().await {
                Ok(Some(line)) => {
                    line_no += 1;
                    line
                }
                Ok(None) | Err(_) => break,
            },
        };
        if line.trim().is_empty() {
            continue;
        }
        let invalid = |message: String| ServerLine::Invalid {
            line: line_no,
            message,
        };
        match serde_json::from_str::<ClientLine>(&line) {
            Ok(ClientLine::Data(item)) => match session.send_input(item).await {
                Ok(()) => {}
                Err(SessionError::InvalidInput(message)) => {
                    let _ = out.send(invalid(message)).await;
                }
                Err(_) => return,
            },
            Ok(ClientLine::End { .. }) => break,
            Ok(ClientLine::Open { .. }) => {
                let message = "`open` is only allowed as the first line".to_owned();
                let _ = out.send(invalid(message)).await;
            }
            Err(e) => {
                let _ = out.send(invalid(format!("not a protocol line: {e}"))).await;
            }
        }
    }
    session.end_input().await;
}

async fn write_lines(write: OwnedWriteHalf, mut lines: mpsc::Receiver<ServerLine>) {
    let mut write = BufWriter::new(write);
    while let Some(line) = lines.recv().await {
        let mut text = serde_json::to_vec(&line).unwrap_or_default();
        text.push(b'\n');
        if write.write_all(&text).await.is_err() {
            return;
        }
        // Flush when nothing else is queued: batches under load, no delay when idle.
        if lines.is_empty() && write.flush().await.is_err() {
            return;
        }
    }
    let _ = write.shutdown().await;
}

/// Sends the closing line and waits until everything was written.
async fn finish(
    lines: mpsc::Sender<ServerLine>,
    writer: tokio::task::JoinHandle<()>,
    reason: String,
) {
    let _ = lines.send(ServerLine::Closed { reason }).await;
    // The writer ends once every sender is gone; this is the last one (the input task, which
    // held the other, was aborted).
    drop(lines);
    let _ = writer.await;
}

/// A client's manifest, checked against the node types the transport runs.
async fn client_manifest(
    transport: &dyn PipelineTransport,
    options: ServeOptions,
    value: &serde_json::Value,
) -> Result<Arc<Manifest>, String> {
    if !options.allow_client_manifests {
        return Err("client manifests are not allowed by this server".to_owned());
    }
    let node_types = transport.node_types().await.map_err(|e| e.to_string())?;
    let checked = manifest::check_value(value, &node_types);
    match checked.manifest {
        Some(m) if !checked.report.has_errors() => Ok(Arc::new(m)),
        _ => Err(format!("invalid manifest: {}", checked.report)),
    }
}
