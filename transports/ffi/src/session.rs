//! The native half of `remotemedia.Session` (python/remotemedia/_session.py holds the other).
//!
//! Receiving is split in two so that cancelling an awaiting task never loses an output:
//! [`NativeSession::wait_output`] (awaitable, cancellable) moves the next output from the
//! session into a buffer owned here, and [`NativeSession::take_output`] (synchronous, so
//! nothing can cancel it) hands it to Python. The Python coroutine calls one after the other.
//! A cancelled wait leaves the output in the buffer for the next receive.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_async_runtimes::tokio::future_into_py;
use remotemedia_runtime_core::manifest::Manifest;
use remotemedia_runtime_core::{PipelineTransport, SessionOutput, StreamSession};

use crate::convert::item_from_py;
use crate::errors::{run_error, send_timeout, session_error};
use crate::output::{Output, output_to_py};
use crate::pipeline::manifest_of;
use crate::runtime::runner;

type Received = Arc<Buffer>;

/// Outputs taken from the session and not yet handed to Python, and a signal for receivers
/// waiting on the session when another receive (cancelled meanwhile) fills it.
#[derive(Default)]
struct Buffer {
    outputs: Mutex<VecDeque<SessionOutput>>,
    filled: tokio::sync::Notify,
}

/// A session of one pipeline; see the module docs.
#[pyclass(frozen, module = "remotemedia._native")]
pub(crate) struct NativeSession {
    manifest: Arc<Manifest>,
    /// Set once the session has started.
    inner: Arc<OnceLock<Arc<dyn StreamSession>>>,
    /// Outputs taken from the session and not yet handed to Python.
    received: Received,
}

impl NativeSession {
    fn started(&self) -> PyResult<Arc<dyn StreamSession>> {
        self.inner.get().cloned().ok_or_else(|| {
            PyRuntimeError::new_err(
                "the session has not started: use `async with remotemedia.open_session(...) as s` \
                 or `await s.start()` first",
            )
        })
    }

    fn received(&self) -> MutexGuard<'_, VecDeque<SessionOutput>> {
        lock(&self.received)
    }
}

fn lock(received: &Received) -> MutexGuard<'_, VecDeque<SessionOutput>> {
    received
        .outputs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// A session of `manifest`, not yet started; a bad manifest raises `ManifestError` here.
#[pyfunction]
pub(crate) fn open_session(manifest: &Bound<'_, PyAny>) -> PyResult<NativeSession> {
    Ok(NativeSession {
        manifest: manifest_of(manifest)?,
        inner: Arc::new(OnceLock::new()),
        received: Received::default(),
    })
}

#[pymethods]
impl NativeSession {
    /// Starts the session's nodes (tasks, processes). A second call does nothing.
    fn start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (manifest, inner) = (self.manifest.clone(), self.inner.clone());
        future_into_py(py, async move {
            if inner.get().is_some() {
                return Ok(());
            }
            let opened = runner()
                .stream(manifest.clone())
                .await
                .map_err(|e| Python::attach(|py| run_error(py, &manifest, e)))?;
            if let Err(duplicate) = inner.set(Arc::from(opened)) {
                // Two concurrent starts: keep the first, close this one.
                duplicate.close().await;
            }
            Ok(())
        })
    }

    /// Sends one item (converted now, so a bad one raises before anything is awaited). With
    /// `timeout` (seconds), a pipeline that takes nothing for that long raises `SendTimeout`
    /// and the item is not sent.
    #[pyo3(signature = (item, *, sequence = None, metadata = None, timeout = None))]
    fn send<'py>(
        &self,
        py: Python<'py>,
        item: &Bound<'py, PyAny>,
        sequence: Option<u64>,
        metadata: Option<&Bound<'py, PyDict>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let session = self.started()?;
        let item = item_from_py(item, sequence, metadata)?;
        let timeout = timeout
            .map(|secs| {
                Duration::try_from_secs_f64(secs).map_err(|_| {
                    PyValueError::new_err(format!(
                        "timeout: {secs} is not a number of seconds >= 0"
                    ))
                })
            })
            .transpose()?;
        future_into_py(py, async move {
            let sent = match timeout {
                None => session.send_input(item).await,
                Some(limit) => match tokio::time::timeout(limit, session.send_input(item)).await {
                    Ok(sent) => sent,
                    Err(_) => {
                        let id = session.session_id().to_owned();
                        return Err(Python::attach(|py| send_timeout(py, &id, limit)));
                    }
                },
            };
            sent.map_err(|e| Python::attach(|py| session_error(py, e)))
        })
    }

    fn end_input<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let session = self.started()?;
        future_into_py(py, async move {
            session.end_input().await;
            Ok(())
        })
    }

    /// Resolves to True once an output is ready for `take_output`, False when the session
    /// has ended.
    fn wait_output<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let session = self.started()?;
        let received = self.received.clone();
        future_into_py(py, async move {
            loop {
                // Armed before the buffer is checked, so a fill in between is not missed.
                let filled = received.filled.notified();
                tokio::pin!(filled);
                filled.as_mut().enable();
                if !lock(&received).is_empty() {
                    return Ok(true);
                }
                // A receive that Python cancelled may still be waiting on the session (its
                // cancellation reaches the runtime later) and take the next output into the
                // buffer: then this one must look there instead of waiting for another.
                tokio::select! {
                    output = session.recv_output() => return match output {
                        Ok(Some(output)) => {
                            lock(&received).push_back(output);
                            received.filled.notify_waiters();
                            Ok(true)
                        }
                        Ok(None) => Ok(false),
                        Err(e) => Err(Python::attach(|py| session_error(py, e))),
                    },
                    () = &mut filled => {}
                }
            }
        })
    }

    /// The oldest ready output (None if another receiver took it first); a node's failure
    /// raises `NodeError`.
    fn take_output(&self, py: Python<'_>) -> PyResult<Option<Output>> {
        let next = self.received().pop_front();
        next.map(|output| output_to_py(py, &self.manifest, output))
            .transpose()
    }

    /// Stops the session now, discarding queued items. Idempotent.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let session = self.inner.get().cloned();
        self.received().clear();
        future_into_py(py, async move {
            if let Some(session) = session {
                session.close().await;
            }
            Ok(())
        })
    }

    #[getter]
    fn id(&self) -> Option<String> {
        self.inner.get().map(|s| s.session_id().to_owned())
    }

    #[getter]
    fn active(&self) -> bool {
        self.inner.get().is_some_and(|s| s.is_active()) || !self.received().is_empty()
    }

    #[getter]
    fn pipeline(&self) -> String {
        self.manifest.name().to_owned()
    }
}
