//! One finding about a manifest: what is wrong, where (field path, node id, line) and how bad.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::source::Position;

/// How serious a [`Problem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Accepted, but worth knowing (a field kept for upstream compatibility is ignored).
    Warning,
    /// The manifest cannot run.
    Error,
}

/// What kind of problem was found. Tests and tools match on this; people read the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The text is not well-formed JSON/YAML.
    Syntax,
    /// A `Pipeline` resource with the wrong apiVersion/kind, or no `spec.manifest`.
    NotAPipeline,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type (a number where a string belongs, ...).
    WrongType,
    /// A field the manifest format does not define.
    UnknownField,
    /// A field accepted for upstream compatibility but not used by this runtime.
    IgnoredField,
    /// `version` is not one this runtime reads.
    UnsupportedVersion,
    /// `nodes` is empty.
    NoNodes,
    /// A node id is empty or has characters that cannot name IPC services and metrics.
    InvalidNodeId,
    /// Two nodes share an id.
    DuplicateNodeId,
    /// A connection names a node that does not exist.
    UnknownEdgeEndpoint,
    /// A connection from a node to itself.
    SelfLoop,
    /// The same connection listed twice (it would deliver every item twice).
    DuplicateEdge,
    /// Connections form a cycle.
    Cycle,
    /// No node type of this name is registered.
    UnknownNodeType,
    /// A param the node type does not define.
    UnknownParam,
    /// A param of the wrong type, out of range, or inconsistent with another param.
    InvalidParam,
}

/// One finding, with everything needed to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The kind of problem.
    pub kind: ProblemKind,
    /// Field path inside the document, e.g. `nodes[2].params.target_rate`.
    pub path: String,
    /// Id of the node concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// 1-based line in the source text, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column in the source text, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// Human-readable description.
    pub message: String,
}

impl Problem {
    /// An error at `path`.
    #[must_use]
    pub fn error(kind: ProblemKind, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            kind,
            path: path.into(),
            node_id: None,
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// A warning at `path`.
    #[must_use]
    pub fn warning(kind: ProblemKind, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(kind, path, message)
        }
    }

    /// Names the node concerned.
    #[must_use]
    pub fn on_node(mut self, node_id: impl Into<String>) -> Self {
        self.node_id = Some(node_id.into());
        self
    }

    /// Sets the source position.
    #[must_use]
    pub fn at(mut self, position: Option<Position>) -> Self {
        self.line = position.map(|p| p.line);
        self.column = position.map(|p| p.column);
        self
    }

    /// True for errors (as opposed to warnings).
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    /// `nodes[2].params.target_rate (node 'resample', line 14): must be at least 1`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "<document>"
        } else {
            &self.path
        };
        f.write_str(path)?;
        let mut parts = Vec::new();
        if let Some(id) = &self.node_id {
            parts.push(format!("node '{id}'"));
        }
        if let Some(line) = self.line {
            parts.push(format!("line {line}"));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one manifest. Displayed one problem per line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(transparent)]
pub struct ValidationReport {
    /// Errors and warnings, in document order where possible.
    pub problems: Vec<Problem>,
}

impl ValidationReport {
    /// True when there is at least one error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.is_error())
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| !p.is_error())
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        write!(
            f,
            "invalid manifest ({errors} error{})",
            if errors == 1 { "" } else { "s" }
        )?;
        for p in self.errors() {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_path_node_and_line() {
        let p = Problem::error(
            ProblemKind::InvalidParam,
            "nodes[2].params.target_rate",
            "bad",
        )
        .on_node("resample")
        .at(Some(Position {
            line: 14,
            column: 7,
        }));
        assert_eq!(
            p.to_string(),
            "nodes[2].params.target_rate (node 'resample', line 14): bad"
        );
    }
}
