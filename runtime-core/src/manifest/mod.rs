//! Pipeline manifests: the upstream v1 format, read from JSON or YAML, validated all at once.
//!
//! ```text
//! text --source::parse--> JSON value + SourceMap --read--> Manifest --validate--> problems
//! ```
//!
//! [`check_document`] runs the whole chain and returns every problem found, each with its field
//! path, node id and line. A file may hold either a bare manifest or a `Pipeline` resource
//! (`apiVersion: remotemedia.dev/v1alpha1`, `kind: Pipeline`) whose `spec.manifest` is the
//! manifest.

mod problem;
mod read;
pub mod source;
mod validate;

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use problem::{Problem, ProblemKind, Severity, ValidationReport};
pub use read::read_manifest;
pub use source::{
    Format, MAX_MANIFEST_BYTES, MAX_MANIFEST_DEPTH, Position, SourceMap, SyntaxError,
};
pub use validate::{MAX_NODE_ID_LEN, validate};

use crate::nodes::NodeRegistry;

/// The manifest versions this runtime reads. `"1.0"` is accepted because upstream examples use it.
pub const SUPPORTED_VERSIONS: &[&str] = &["v1", "1.0"];

/// `apiVersion` of the `Pipeline` custom resource.
pub const PIPELINE_API_VERSION: &str = "remotemedia.dev/v1alpha1";

/// `kind` of the `Pipeline` custom resource.
pub const PIPELINE_KIND: &str = "Pipeline";

/// A pipeline manifest: nodes and the connections between them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version; `v1`.
    pub version: String,
    /// Name and description.
    #[serde(default)]
    pub metadata: ManifestMetadata,
    /// The processing nodes.
    pub nodes: Vec<NodeSpec>,
    /// Directed edges `from -> to`. Items entering the pipeline go to every node without an
    /// incoming edge; outputs come from every node without an outgoing edge.
    #[serde(default)]
    pub connections: Vec<Connection>,
}

impl Manifest {
    /// The pipeline name used in metrics and logs (`metadata.name`, or `"unnamed"`).
    #[must_use]
    pub fn name(&self) -> &str {
        if self.metadata.name.is_empty() {
            "unnamed"
        } else {
            &self.metadata.name
        }
    }

    /// Parses and validates a manifest held in `text`, failing on any error.
    ///
    /// # Errors
    /// Returns every problem found (errors and warnings).
    pub fn from_text(
        text: &str,
        format: Format,
        registry: &NodeRegistry,
    ) -> Result<Arc<Self>, ValidationReport> {
        let checked = check_document(text, format, registry);
        match checked.manifest {
            Some(m) if !checked.report.has_errors() => Ok(Arc::new(m)),
            _ => Err(checked.report),
        }
    }
}

/// Descriptive metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestMetadata {
    /// Pipeline name.
    #[serde(default)]
    pub name: String,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Creation time, as written by the author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// One processing node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique id within the manifest; names the node in outputs, errors and metrics.
    pub id: String,
    /// Registered node type, e.g. `FastResampleNode`.
    pub node_type: String,
    /// Node parameters, checked against the node type's schema.
    #[serde(default, skip_serializing_if = "is_empty_params")]
    pub params: Value,
    /// Also send this node's outputs to the client, although it has successors.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_output_node: bool,
}

fn is_empty_params(v: &Value) -> bool {
    v.is_null() || v.as_object().is_some_and(serde_json::Map::is_empty)
}

/// A directed edge between two nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Producing node id.
    pub from: String,
    /// Consuming node id.
    pub to: String,
}

/// The outcome of [`check_document`]: the manifest if it could be read, and all problems.
#[derive(Clone, Debug)]
pub struct CheckedDocument {
    /// The manifest, when the document's structure could be read (it may still have errors).
    pub manifest: Option<Manifest>,
    /// Every problem, with lines attached where known.
    pub report: ValidationReport,
}

/// Parses, reads and validates one document, collecting every problem with its line.
#[must_use]
pub fn check_document(text: &str, format: Format, registry: &NodeRegistry) -> CheckedDocument {
    let (value, source_map) = match source::parse(text, format) {
        Ok(parsed) => parsed,
        Err(e) => {
            let problem = Problem::error(ProblemKind::Syntax, "", e.message).at(Some(e.position));
            return CheckedDocument {
                manifest: None,
                report: ValidationReport {
                    problems: vec![problem],
                },
            };
        }
    };
    let mut checked = check_value(&value, registry);
    for p in &mut checked.report.problems {
        let position = source_map.locate(&p.path);
        p.line = position.map(|x| x.line);
        p.column = position.map(|x| x.column);
    }
    checked
}

/// Reads and validates a document that is already a JSON value (a bare manifest or a
/// `Pipeline` resource), as an admission webhook receives it. Problems carry paths and node
/// ids but no lines: there is no source text.
#[must_use]
pub fn check_value(value: &Value, registry: &NodeRegistry) -> CheckedDocument {
    let (manifest, mut problems, prefix) = read_manifest(value);
    if let Some(m) = &manifest {
        for mut p in validate(m, registry) {
            p.path = join_path(&prefix, &p.path);
            problems.push(p);
        }
    }
    CheckedDocument {
        manifest,
        report: ValidationReport { problems },
    }
}

pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}
