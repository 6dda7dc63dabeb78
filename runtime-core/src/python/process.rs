//! A node's OS process: spawned with its stdio piped, its output logged, its exit watched and
//! reaped.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::PythonOptions;

/// Lines of stderr kept to explain an exit.
const TAIL_LINES: usize = 4;
/// How long an exited process's last stderr lines may take to arrive.
const LAST_WORDS: Duration = Duration::from_millis(200);

/// A running node process.
pub(super) struct NodeProcess {
    /// Closing it (dropping) tells the process to exit: it reads stdin until end of file.
    pub(super) _stdin: ChildStdin,
    /// `Some(reason)` once the process exited while in use.
    pub(super) exited: watch::Receiver<Option<String>>,
    /// Dropped when the node is: from then on an exit is expected, and a process that
    /// lingers past the grace period is killed.
    pub(super) _release: oneshot::Sender<()>,
}

/// Starts `python -m remotemedia_nodes serve <args>`; `label` names it in logs and errors.
pub(super) fn spawn(
    options: &PythonOptions,
    args: &[String],
    label: String,
) -> std::io::Result<NodeProcess> {
    let mut child = Command::new(&options.interpreter)
        .args(["-m", "remotemedia_nodes", "serve"])
        .args(args)
        .envs(options.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Should the watcher never run (the runtime shutting down), the process still dies.
        .kill_on_drop(true)
        .spawn()?;
    let label = match child.id() {
        Some(pid) => format!("{label} (pid {pid})"),
        None => label,
    };
    let stdin = child.stdin.take().expect("stdin is piped");
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward_lines(stdout, label.clone(), None));
    }
    let stderr = child
        .stderr
        .take()
        .map(|stderr| tokio::spawn(forward_lines(stderr, label.clone(), Some(tail.clone()))));
    let (exited_tx, exited) = watch::channel(None);
    let (release, released) = oneshot::channel();
    let watcher = Watcher {
        label,
        tail,
        stderr,
        grace: options.exit_grace,
    };
    tokio::spawn(watcher.run(child, exited_tx, released));
    Ok(NodeProcess {
        _stdin: stdin,
        exited,
        _release: release,
    })
}

/// Logs each line the process prints (stdout at info, stderr at warn), keeping the last few
/// stderr lines in `tail` when given.
async fn forward_lines(
    stream: impl AsyncRead + Unpin,
    label: String,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match &tail {
            None => tracing::info!(node = %label, "{line}"),
            Some(tail) => {
                tracing::warn!(node = %label, "{line}");
                if !line.trim().is_empty() {
                    let mut tail = tail
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        }
    }
}

struct Watcher {
    label: String,
    tail: Arc<Mutex<VecDeque<String>>>,
    stderr: Option<JoinHandle<()>>,
    grace: Duration,
}

impl Watcher {
    /// Waits for the process to exit (reaping it). An exit before release is reported on
    /// `exited`; after release the process gets `grace` to go by itself before it is killed.
    async fn run(
        self,
        mut child: Child,
        exited: watch::Sender<Option<String>>,
        mut released: oneshot::Receiver<()>,
    ) {
        let status = tokio::select! {
            status = child.wait() => status,
            _ = &mut released => {
                if tokio::time::timeout(self.grace, child.wait()).await.is_err() {
                    tracing::warn!(node = %self.label, grace = ?self.grace, "Node process outlived its session; killing it.");
                    // `kill` also waits, so the process is reaped.
                    let _ = child.kill().await;
                }
                return;
            }
        };
        exited.send_replace(Some(self.reason(status).await));
        super::node::clean_up_after_dead_processes();
    }

    async fn reason(self, status: std::io::Result<ExitStatus>) -> String {
        if let Some(stderr) = self.stderr {
            let _ = tokio::time::timeout(LAST_WORDS, stderr).await;
        }
        let status = status.map_or_else(|e| format!("status unknown: {e}"), |s| s.to_string());
        let tail = self
            .tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match tail.back() {
            Some(last) => format!("{} exited ({status}); its last words: {last}", self.label),
            None => format!("{} exited ({status})", self.label),
        }
    }
}
