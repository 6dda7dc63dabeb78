//! # remotemedia-ffi
//!
//! The `remotemedia` Python package: pipelines run in the calling process, driven from asyncio.
//! This crate is its native part (`remotemedia._native`), built by maturin; the pure-Python
//! part (exceptions, type stubs) lives in `python/remotemedia`.
//!
//! * `pipeline`: manifests from a path, text or dict; `validate`, `load`, `Problem`.
//! * `convert`: Python values <-> pipeline data; `audio`: numpy audio without copies.
//! * `execute` (below) and `session`: running pipelines; `output`: their results.
//! * `errors`: runtime errors as the package's exceptions, with node ids and paths.
//!
//! The runtime's work happens on tokio threads without the GIL; Python threads hold it only
//! to convert items on the way in and out.

mod audio;
mod convert;
mod errors;
mod nodes;
mod output;
mod pipeline;
mod runtime;
mod session;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_async_runtimes::tokio::future_into_py;
use remotemedia_runtime_core::PipelineTransport;

use crate::convert::item_from_py;
use crate::errors::run_error;
use crate::output::Outputs;
use crate::pipeline::manifest_of;
use crate::runtime::runner;

/// Runs one item through a fresh session of `manifest` and resolves to every output once the
/// pipeline has drained. A node failure raises `NodeError`, a pipeline that does not drain
/// within 30 s `PipelineTimeout`.
#[pyfunction]
#[pyo3(signature = (manifest, item, *, sequence = None, metadata = None))]
fn execute<'py>(
    py: Python<'py>,
    manifest: &Bound<'py, PyAny>,
    item: &Bound<'py, PyAny>,
    sequence: Option<u64>,
    metadata: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let manifest = manifest_of(manifest)?;
    let item = item_from_py(item, sequence, metadata)?;
    future_into_py(py, async move {
        match runner().execute(manifest.clone(), item).await {
            Ok(outputs) => Ok(Outputs { manifest, outputs }),
            Err(e) => Err(Python::attach(|py| run_error(py, &manifest, e))),
        }
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<audio::Audio>()?;
    m.add_class::<output::Output>()?;
    m.add_class::<pipeline::Pipeline>()?;
    m.add_class::<pipeline::Problem>()?;
    m.add_class::<session::NativeSession>()?;
    m.add_class::<nodes::NodeType>()?;
    m.add_class::<nodes::Param>()?;
    m.add_function(wrap_pyfunction!(pipeline::validate, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::load, m)?)?;
    m.add_function(wrap_pyfunction!(nodes::list_nodes, m)?)?;
    m.add_function(wrap_pyfunction!(execute, m)?)?;
    m.add_function(wrap_pyfunction!(session::open_session, m)?)?;
    Ok(())
}
