//! Manifests from Python: a path, YAML/JSON text or a dict, checked into a [`Pipeline`], and
//! the [`Problem`]s found along the way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use remotemedia_runtime_core::manifest::{
    self, CheckedDocument, Format, Manifest, Problem as CoreProblem, ProblemKind, Severity,
};

use crate::convert::json_from_py;
use crate::errors::manifest_error;
use crate::runtime::runner;

/// One problem with a manifest.
#[pyclass(frozen, module = "remotemedia", get_all, eq)]
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Problem {
    /// `"error"` or `"warning"`.
    severity: &'static str,
    /// What kind of problem (`"unknown_node_type"`, `"cycle"`, ...), for programs to match.
    kind: String,
    /// Field path inside the document, e.g. `nodes[2].params.target_rate`.
    path: String,
    /// The node concerned, when there is one.
    node_id: Option<String>,
    /// 1-based line in the source text, when known.
    line: Option<usize>,
    /// 1-based column, when known.
    column: Option<usize>,
    /// What is wrong.
    message: String,
}

impl Problem {
    /// `path (node 'x', line 3): message`: the runtime's own form (`Display` of the problem).
    pub(crate) fn describe(p: &CoreProblem) -> String {
        p.to_string()
    }
}

impl From<CoreProblem> for Problem {
    fn from(p: CoreProblem) -> Self {
        let kind = serde_json::to_value(p.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{:?}", p.kind));
        Self {
            severity: match p.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            kind,
            path: p.path,
            node_id: p.node_id,
            line: p.line,
            column: p.column,
            message: p.message,
        }
    }
}

#[pymethods]
impl Problem {
    fn __str__(&self) -> String {
        Self::describe(&CoreProblem {
            severity: if self.severity == "error" {
                Severity::Error
            } else {
                Severity::Warning
            },
            kind: ProblemKind::Syntax,
            path: self.path.clone(),
            node_id: self.node_id.clone(),
            line: self.line,
            column: self.column,
            message: self.message.clone(),
        })
    }

    fn __repr__(&self) -> String {
        let node_id = self
            .node_id
            .as_ref()
            .map_or_else(|| "None".to_owned(), |n| format!("{n:?}"));
        let line = self
            .line
            .map_or_else(|| "None".to_owned(), |l| l.to_string());
        format!(
            "Problem(severity={:?}, kind={:?}, path={:?}, node_id={node_id}, line={line}, message={:?})",
            self.severity, self.kind, self.path, self.message
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
