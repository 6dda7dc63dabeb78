//! `remotemedia.list_nodes()`: the node types a manifest can use.

use pyo3::prelude::*;
use remotemedia_runtime_core::nodes::{NodeFactory, ParamInfo};

use crate::convert::json_to_py;
use crate::runtime::runner;

/// One param of a node type.
#[pyclass(frozen, module = "remotemedia", get_all)]
pub(crate) struct Param {
    /// Param name.
    name: String,
    /// Type summary (`integer`, `number >= 1`, `"Low" | "High"`, ...).
    r#type: String,
    /// True when a manifest must set it.
    required: bool,
    /// Value when omitted (JSON), or None.
    default: Py<PyAny>,
    /// What it does.
    description: Option<String>,
}

#[pymethods]
impl Param {
    fn __repr__(&self) -> String {
        format!(
            "Param(name={:?}, type={:?}, required={})",
            self.name, self.r#type, self.required
        )
    }
}

/// A node type: its name, what it does, what it takes and produces, and its params.
#[pyclass(frozen, module = "remotemedia", get_all)]
pub(crate) struct NodeType {
    /// The `node_type` to write in a manifest.
    name: String,
    /// One line on what it does.
    description: String,
    /// Data kinds it accepts (`"audio"`, `"text"`, `"json"`, `"binary"`, `"tensor"`).
    accepts: Vec<&'static str>,
    /// Data kinds it produces.
    produces: Vec<&'static str>,
    /// Its params.
    params: Vec<Py<Param>>,
    /// JSON schema of its params object.
    params_schema: Py<PyAny>,
}

#[pymethods]
impl NodeType {
    fn __repr__(&self) -> String {
        format!(
            "NodeType(name={:?}, accepts={:?}, produces={:?})",
            self.name, self.accepts, self.produces
        )
    }
}

fn param(py: Python<'_>, info: ParamInfo) -> PyResult<Py<Param>> {
    let default = match &info.default {
        Some(value) => json_to_py(py, value)?.unbind(),
        None => py.None(),
    };
    Py::new(
        py,
        Param {
            name: info.name,
            r#type: info.type_name,
            required: info.required,
            default,
            description: info.description,
        },
    )
}

fn node_type(py: Python<'_>, factory: &dyn NodeFactory) -> PyResult<NodeType> {
    let io = factory.io();
    Ok(NodeType {
        name: factory.node_type().to_owned(),
        description: factory.description().to_owned(),
        accepts: io.accepts.iter().map(|k| k.as_str()).collect(),
        produces: io.produces.iter().map(|k| k.as_str()).collect(),
        params: factory
            .params()
            .into_iter()
            .map(|p| param(py, p))
            .collect::<PyResult<_>>()?,
        params_schema: json_to_py(py, factory.params_schema())?.unbind(),
    })
}

/// Every node type this runtime knows, by name.
#[pyfunction]
pub(crate) fn list_nodes(py: Python<'_>) -> PyResult<Vec<NodeType>> {
    runner()
        .registry()
        .factories()
        .map(|f| node_type(py, f.as_ref()))
        .collect()
}
