//! Runtime errors as the Python exceptions of `remotemedia.errors`.
//!
//! The exception classes are written in Python (they inherit from built-ins such as
//! `ValueError` and carry attributes); this module builds them from the runtime's error enums,
//! adding the manifest path of the node concerned.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use remotemedia_runtime_core::manifest::{Manifest, Problem as CoreProblem, Severity};
use remotemedia_runtime_core::{NodeFailure, RunError, SessionError};

use crate::pipeline::Problem;

const MODULE: &str = "remotemedia.errors";

macro_rules! exception_type {
    ($fn_name:ident, $class:literal) => {
        fn $fn_name(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
            static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
            TYPE.import(py, MODULE, $class)
        }
    };
}

exception_type!(manifest_error_type, "ManifestError");
exception_type!(node_error_type, "NodeError");
exception_type!(timeout_type, "PipelineTimeout");
exception_type!(closed_type, "SessionClosed");
exception_type!(aborted_type, "SessionAborted");
exception_type!(send_timeout_type, "SendTimeout");
exception_type!(base_type, "RemoteMediaError");

/// Instantiates `class(message, **attrs)` as a `PyErr`; if even that fails (the package is
/// broken), the failure itself is raised, which still names what went wrong.
fn raise<'py>(
    py: Python<'py>,
    class: PyResult<&Bound<'py, PyType>>,
    message: String,
    attrs: impl FnOnce(&Bound<'py, PyDict>) -> PyResult<()>,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let kwargs = PyDict::new(py);
        attrs(&kwargs)?;
        let exception = class?.call((message,), Some(&kwargs))?;
        Ok(PyErr::from_value(exception))
    };
    build().unwrap_or_else(|e| e)
}

/// `ManifestError` listing `problems`; `source` names where the manifest came from.
pub(crate) fn manifest_error(py: Python<'_>, source: &str, problems: Vec<CoreProblem>) -> PyErr {
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let mut message = format!(
        "manifest {source} has {errors} error{}:",
        if errors == 1 { "" } else { "s" }
    );
    for p in &problems {
        message.push_str("\n  - ");
        message.push_str(&p.to_string());
    }
    raise(py, manifest_error_type(py), message, |kw| {
        let problems: Vec<Problem> = problems.into_iter().map(Problem::from).collect();
        kw.set_item("problems", problems)?;
        kw.set_item("source", source)
    })
}

/// `NodeError` for a node's failure on one item.
pub(crate) fn node_error(py: Python<'_>, manifest: &Manifest, failure: NodeFailure) -> PyErr {
    let path = node_path(manifest, &failure.node_id);
    raise(py, node_error_type(py), failure.to_string(), |kw| {
        kw.set_item("node_id", failure.node_id)?;
        kw.set_item("path", path)?;
        kw.set_item("sequence", failure.sequence)
    })
}

/// The exception for a session operation that failed.
pub(crate) fn session_error(py: Python<'_>, error: SessionError) -> PyErr {
    let message = error.to_string();
    match error {
        SessionError::InputEnded { session_id } | SessionError::Closed { session_id } => {
            raise(py, closed_type(py), message, |kw| {
                kw.set_item("session_id", session_id)
            })
        }
        SessionError::Aborted { session_id, reason } => {
            raise(py, aborted_type(py), message, |kw| {
                kw.set_item("session_id", session_id)?;
                kw.set_item("reason", reason)
            })
        }
        SessionError::InvalidInput(reason) => pyo3::exceptions::PyValueError::new_err(reason),
        _ => raise(py, base_type(py), message, |_| Ok(())),
    }
}

/// `SendTimeout`: the pipeline took no input for `timeout`.
pub(crate) fn send_timeout(py: Python<'_>, session_id: &str, timeout: Duration) -> PyErr {
    let message = format!(
        "session {session_id}: the pipeline took no input for {timeout:?}; its queues are full, \
         most often because nobody reads the outputs. Read them while sending \
         (`Session.stream`, or iterate the session in another task), or pass a longer timeout"
    );
    raise(py, send_timeout_type(py), message, |kw| {
        kw.set_item("session_id", session_id)?;
        kw.set_item("timeout", timeout.as_secs_f64())
    })
}

/// The exception for a pipeline that could not run, or did not finish.
pub(crate) fn run_error(py: Python<'_>, manifest: &Manifest, error: RunError) -> PyErr {
    let message = error.to_string();
    match error {
        RunError::InvalidManifest(report) => manifest_error(py, manifest.name(), report.problems),
        RunError::NodeCreation { node_id, issues } => {
            let base = node_path(manifest, &node_id).unwrap_or_default();
            let problems = issues
                .into_iter()
                .map(|issue| CoreProblem {
                    severity: Severity::Error,
                    kind: issue.kind,
                    path: if issue.field.is_empty() {
                        format!("{base}.params")
                    } else {
                        format!("{base}.params.{}", issue.field)
                    },
                    node_id: Some(node_id.clone()),
                    line: None,
                    column: None,
                    message: issue.message,
                })
                .collect();
            manifest_error(py, manifest.name(), problems)
        }
        RunError::NodeStart { node_id, .. } => {
            let path = node_path(manifest, &node_id);
            raise(py, node_error_type(py), message, |kw| {
                kw.set_item("node_id", node_id)?;
                kw.set_item("path", path)
            })
        }
        RunError::DeadlineExceeded {
            unfinished_nodes, ..
        } => raise(py, timeout_type(py), message, |kw| {
            kw.set_item("unfinished_nodes", unfinished_nodes)
        }),
        RunError::Session(e) => session_error(py, e),
        _ => raise(py, base_type(py), message, |_| Ok(())),
    }
}

/// `nodes[i]`: where `node_id` is declared in the manifest.
fn node_path(manifest: &Manifest, node_id: &str) -> Option<String> {
    manifest
        .nodes
        .iter()
        .position(|n| n.id == node_id)
        .map(|i| format!("nodes[{i}]"))
}
