//! Manifests from Python: a path, YAML/JSON text or a dict, checked into a [`Pipeline`], and
//! the [`Problem`]s found along the way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use remotemedia_runtime_core::manifest::{
    self, CheckedDocument, Format, Manifest, Problem as CoreProblem, Severity,
};

use crate::convert::json_from_py;
use crate::errors::manifest_error;
use crate::runtime::runner;

/// One problem with a manifest: the runtime's own, with Python getters.
#[pyclass(frozen, module = "remotemedia", eq)]
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Problem(CoreProblem);

impl From<CoreProblem> for Problem {
    fn from(p: CoreProblem) -> Self {
        Self(p)
    }
}

#[pymethods]
impl Problem {
    /// `"error"` or `"warning"`.
    #[getter]
    fn severity(&self) -> &'static str {
        match self.0.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }

    /// What kind of problem (`"unknown_node_type"`, `"cycle"`, ...), for programs to match:
    /// the name the runtime serializes it under.
    #[getter]
    fn kind(&self) -> String {
        serde_json::to_value(self.0.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{:?}", self.0.kind))
    }

    /// Field path inside the document, e.g. `nodes[2].params.target_rate`.
    #[getter]
    fn path(&self) -> &str {
        &self.0.path
    }

    /// The node concerned, when there is one.
    #[getter]
    fn node_id(&self) -> Option<&str> {
        self.0.node_id.as_deref()
    }

    /// 1-based line in the source text, when known.
    #[getter]
    fn line(&self) -> Option<usize> {
        self.0.line
    }

    /// 1-based column, when known.
    #[getter]
    fn column(&self) -> Option<usize> {
        self.0.column
    }

    /// What is wrong.
    #[getter]
    fn message(&self) -> &str {
        &self.0.message
    }

    /// `path (node 'x', line 3): message`, as the runtime prints problems.
    fn __str__(&self) -> String {
        self.0.to_string()
    }

    fn __repr__(&self) -> String {
        let p = &self.0;
        let node_id = p
            .node_id
            .as_ref()
            .map_or_else(|| "None".to_owned(), |n| format!("{n:?}"));
        let line = p.line.map_or_else(|| "None".to_owned(), |l| l.to_string());
        format!(
            "Problem(severity={:?}, kind={:?}, path={:?}, node_id={node_id}, line={line}, message={:?})",
            self.severity(),
            self.kind(),
            p.path,
            p.message
        )
    }
}

/// A checked manifest, ready to run any number of times.
#[pyclass(frozen, module = "remotemedia")]
pub(crate) struct Pipeline {
    pub(crate) manifest: Arc<Manifest>,
    source: String,
}

#[pymethods]
impl Pipeline {
    /// `metadata.name` of the manifest (`"unnamed"` without one).
    #[getter]
    fn name(&self) -> &str {
        self.manifest.name()
    }

    /// Where the manifest came from: a file path, `<string>` or `<dict>`.
    #[getter]
    fn source(&self) -> &str {
        &self.source
    }

    /// Node ids in manifest order.
    #[getter]
    fn node_ids(&self) -> Vec<String> {
        self.manifest.nodes.iter().map(|n| n.id.clone()).collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Pipeline(name={:?}, nodes={:?}, source={:?})",
            self.manifest.name(),
            self.node_ids(),
            self.source
        )
    }
}

/// What the caller passed as a manifest, read but not yet checked.
enum Document {
    Text {
        text: String,
        format: Format,
        source: String,
    },
    Value(serde_json::Value),
}

const MANIFEST_SUFFIXES: &[&str] = &[".yaml", ".yml", ".json"];

/// Reads `obj`: an `os.PathLike` or a one-line string naming a file is read from disk; other
/// strings are the manifest's text; a dict is the manifest itself.
fn read_document(obj: &Bound<'_, PyAny>) -> PyResult<Document> {
    if let Ok(text) = obj.cast::<PyString>() {
        let text = text.to_str()?;
        let one_line = !text.contains('\n');
        let trimmed = text.trim();
        let looks_like_path = one_line
            && !trimmed.starts_with('{')
            && (MANIFEST_SUFFIXES.iter().any(|s| trimmed.ends_with(s))
                || Path::new(trimmed).is_file());
        if looks_like_path {
            return read_file(Path::new(trimmed));
        }
        return Ok(Document::Text {
            format: Format::detect(None, text),
            text: text.to_owned(),
            source: "<string>".to_owned(),
        });
    }
    if obj.hasattr("__fspath__")? {
        let path: PathBuf = obj.extract()?;
        return read_file(&path);
    }
    if obj.cast::<PyDict>().is_ok() {
        return json_from_py(obj, "manifest").map(Document::Value);
    }
    Err(PyTypeError::new_err(format!(
        "manifest must be a path, YAML/JSON text, a dict or a remotemedia.Pipeline, not {}",
        obj.get_type().name()?
    )))
}

fn read_file(path: &Path) -> PyResult<Document> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        PyOSError::new_err((
            e.raw_os_error().unwrap_or(0),
            format!("cannot read manifest {}: {e}", path.display()),
            path.display().to_string(),
        ))
    })?;
    let source = path.display().to_string();
    Ok(Document::Text {
        format: Format::detect(Some(&source), &text),
        text,
        source,
    })
}

fn check(document: &Document) -> (CheckedDocument, String) {
    let registry = runner().registry();
    match document {
        Document::Text {
            text,
            format,
            source,
        } => (
            manifest::check_document(text, *format, registry),
            source.clone(),
        ),
        Document::Value(value) => (manifest::check_value(value, registry), "<dict>".to_owned()),
    }
}

/// Every problem with `manifest` (errors and warnings); empty when it is fine.
#[pyfunction]
pub(crate) fn validate(py: Python<'_>, manifest: &Bound<'_, PyAny>) -> PyResult<Vec<Problem>> {
    if manifest.cast::<Pipeline>().is_ok() {
        return Ok(Vec::new());
    }
    let document = read_document(manifest)?;
    let (checked, _) = py.detach(|| check(&document));
    Ok(checked
        .report
        .problems
        .into_iter()
        .map(Problem::from)
        .collect())
}

/// Checks `manifest` and returns it ready to run; raises `ManifestError` listing every problem.
#[pyfunction]
pub(crate) fn load(py: Python<'_>, manifest: &Bound<'_, PyAny>) -> PyResult<Py<Pipeline>> {
    if let Ok(pipeline) = manifest.cast::<Pipeline>() {
        return Ok(pipeline.clone().unbind());
    }
    let document = read_document(manifest)?;
    let (checked, source) = py.detach(|| check(&document));
    match checked.manifest {
        Some(m) if !checked.report.has_errors() => Py::new(
            py,
            Pipeline {
                manifest: Arc::new(m),
                source,
            },
        ),
        _ => Err(manifest_error(py, &source, checked.report.problems)),
    }
}

/// The manifest of `obj` (a `Pipeline`, or anything [`load`] takes).
pub(crate) fn manifest_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<Manifest>> {
    if let Ok(pipeline) = obj.cast::<Pipeline>() {
        return Ok(pipeline.get().manifest.clone());
    }
    let pipeline = load(obj.py(), obj)?;
    Ok(pipeline.get().manifest.clone())
}
