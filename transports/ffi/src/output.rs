//! `remotemedia.Output` and the conversion of a session's outputs to Python.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;
use remotemedia_runtime_core::SessionOutput;
use remotemedia_runtime_core::manifest::Manifest;

use crate::convert::data_to_py;
use crate::errors::node_error;

/// One result: the data a node produced, tagged with the node and the input it derives from.
#[pyclass(frozen, module = "remotemedia", get_all)]
pub(crate) struct Output {
    /// Id of the node that produced it.
    node: String,
    /// The kind of data: `"audio"`, `"text"`, `"json"`, `"binary"` or `"tensor"` (tells a
    /// JSON string from text).
    kind: &'static str,
    /// The data: `Audio`, `str`, `dict`/`list`, `bytes` or a numpy array.
    data: Py<PyAny>,
    /// Sequence number of the input it derives from.
    sequence: Option<u64>,
    /// Metadata of the input it derives from.
    metadata: BTreeMap<String, String>,
}

#[pymethods]
impl Output {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Output(node={:?}, kind={:?}, sequence={}, data={})",
            self.node,
            self.kind,
            self.sequence
                .map_or_else(|| "None".to_owned(), |s| s.to_string()),
            self.data.bind(py).repr()?
        ))
    }
}

/// A node's data as an [`Output`]; a node's failure as the `NodeError` to raise.
pub(crate) fn output_to_py(
    py: Python<'_>,
    manifest: &Manifest,
    output: SessionOutput,
) -> PyResult<Output> {
    match output {
        SessionOutput::Data { node_id, data } => Ok(Output {
            node: node_id,
            kind: data.data.kind().as_str(),
            data: data_to_py(py, data.data)?.unbind(),
            sequence: data.sequence,
            metadata: data.metadata,
        }),
        SessionOutput::Error(failure) => Err(node_error(py, manifest, failure)),
    }
}

/// What `execute` resolves to, converted to a list in the one GIL hold that hands the result
/// to asyncio.
pub(crate) struct Outputs {
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) outputs: Vec<SessionOutput>,
}

impl<'py> IntoPyObject<'py> for Outputs {
    type Target = PyList;
    type Output = Bound<'py, PyList>;
    type Error = PyErr;

    /// The outputs in order; the first node failure raises `NodeError` instead.
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let list = PyList::empty(py);
        for output in self.outputs {
            list.append(output_to_py(py, &self.manifest, output)?)?;
        }
        Ok(list)
    }
}
