//! Reading a JSON value into a [`Manifest`], reporting every structural problem on the way.
//!
//! This is done by hand rather than by `serde` so that one pass reports *all* unknown fields,
//! wrong types and missing fields with their paths, where serde stops at the first. Fields
//! that are missing or mistyped get an empty placeholder so that the semantic checks in
//! `validate` still run on the rest of the document (they report empty ids and node types).

use serde_json::{Map, Value};

use super::{
    Connection, Manifest, ManifestMetadata, NodeSpec, PIPELINE_API_VERSION, PIPELINE_KIND, Problem,
    ProblemKind,
};

/// Node fields of the upstream format that this runtime accepts and ignores (with a warning).
const IGNORED_NODE_FIELDS: &[&str] = &[
    "is_streaming",
    "capabilities",
    "host",
    "runtime_hint",
    "execution",
    "fast_path",
    "media_capabilities",
    "python_deps",
    "docker",
    "input_types",
    "output_types",
];

/// Reads `value` as a bare manifest or a `Pipeline` resource.
///
/// Returns the manifest (when the document has a readable structure), the structural problems,
/// and the path prefix of the manifest inside the document (`spec.manifest` for a resource).
#[must_use]
pub fn read_manifest(value: &Value) -> (Option<Manifest>, Vec<Problem>, String) {
    let mut problems = Vec::new();
    let Some(root) = value.as_object() else {
        problems.push(wrong_type("", "the document", "an object", value));
        return (None, problems, String::new());
    };
    if !(root.contains_key("apiVersion") || root.contains_key("kind")) {
        let manifest = read_bare(root, "", &mut problems);
        return (manifest, problems, String::new());
    }

    let prefix = "spec.manifest".to_owned();
    let api_version = root.get("apiVersion").and_then(Value::as_str);
    let kind = root.get("kind").and_then(Value::as_str);
    if api_version != Some(PIPELINE_API_VERSION) || kind != Some(PIPELINE_KIND) {
        problems.push(Problem::error(
            ProblemKind::NotAPipeline,
            "",
            format!(
                "a resource must be apiVersion: {PIPELINE_API_VERSION}, kind: {PIPELINE_KIND} \
                 (found apiVersion: {}, kind: {})",
                api_version.unwrap_or("<none>"),
                kind.unwrap_or("<none>")
            ),
        ));
        return (None, problems, prefix);
    }
    let Some(inner) = root.get("spec").and_then(|s| s.get("manifest")) else {
        problems.push(Problem::error(
            ProblemKind::MissingField,
            "spec.manifest",
            "a Pipeline resource must hold its manifest in spec.manifest",
        ));
        return (None, problems, prefix);
    };
    let Some(obj) = inner.as_object() else {
        problems.push(wrong_type(&prefix, "spec.manifest", "an object", inner));
        return (None, problems, prefix);
    };
    let mut manifest = read_bare(obj, &prefix, &mut problems);
    if let Some(m) = &mut manifest {
        // The resource's own name stands in for a manifest without one.
        if m.metadata.name.is_empty() {
            let name = root
                .get("metadata")
                .and_then(|md| md.get("name"))
                .and_then(Value::as_str);
            m.metadata.name = name.unwrap_or_default().to_owned();
        }
    }
    (manifest, problems, prefix)
}

fn read_bare(
    root: &Map<String, Value>,
    prefix: &str,
    problems: &mut Vec<Problem>,
) -> Option<Manifest> {
    let path = |field: &str| super::join_path(prefix, field);
    for key in root.keys() {
        match key.as_str() {
            "version" | "metadata" | "nodes" | "connections" => {}
            "python_env" => problems.push(Problem::warning(
                ProblemKind::IgnoredField,
                path(key),
                "python_env is accepted for upstream compatibility and ignored",
            )),
            other => problems.push(unknown_field(&path(other), other, "the manifest")),
        }
    }

    let version = match root.get("version") {
        None => {
            problems.push(Problem::error(
                ProblemKind::MissingField,
                path("version"),
                "version is required (use \"v1\")",
            ));
            String::new()
        }
        Some(v) => string_or_report(v, &path("version"), "version", problems),
    };
    let metadata = match root.get("metadata") {
        None | Some(Value::Null) => ManifestMetadata::default(),
        Some(Value::Object(m)) => read_metadata(m, &path("metadata"), problems),
        Some(other) => {
            problems.push(wrong_type(
                &path("metadata"),
                "metadata",
                "an object",
                other,
            ));
            ManifestMetadata::default()
        }
    };
    let nodes = match root.get("nodes") {
        None => {
            problems.push(Problem::error(
                ProblemKind::MissingField,
                path("nodes"),
                "nodes is required",
            ));
            return None;
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| read_node(item, &path(&format!("nodes[{i}]")), problems))
            .collect(),
        Some(other) => {
            problems.push(wrong_type(&path("nodes"), "nodes", "a list", other));
            return None;
        }
    };
    let connections = match root.get("connections") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| read_connection(item, &path(&format!("connections[{i}]")), problems))
            .collect(),
        Some(other) => {
            problems.push(wrong_type(
                &path("connections"),
                "connections",
                "a list",
                other,
            ));
            Vec::new()
        }
    };
    Some(Manifest {
        version,
        metadata,
        nodes,
        connections,
    })
}

fn read_metadata(
    m: &Map<String, Value>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> ManifestMetadata {
    let mut out = ManifestMetadata::default();
    for (key, value) in m {
        let field_path = format!("{path}.{key}");
        match key.as_str() {
            "name" => out.name = string_or_report(value, &field_path, "metadata.name", problems),
            "description" => {
                out.description = Some(string_or_report(
                    value,
                    &field_path,
                    "metadata.description",
                    problems,
                ));
            }
            "created_at" => {
                out.created_at = Some(string_or_report(
                    value,
                    &field_path,
                    "metadata.created_at",
                    problems,
                ));
            }
            // Metadata is descriptive: extra keys (upstream examples carry several) are kept
            // out of the model but do not stop the pipeline.
            other => problems.push(Problem::warning(
                ProblemKind::IgnoredField,
                field_path,
                format!("metadata.{other} is not used by this runtime and is ignored"),
            )),
        }
    }
    out
}

fn read_node(item: &Value, path: &str, problems: &mut Vec<Problem>) -> NodeSpec {
    let Some(obj) = item.as_object() else {
        problems.push(wrong_type(path, "a node", "an object", item));
        return NodeSpec {
            id: String::new(),
            node_type: String::new(),
            params: Value::Null,
            is_output_node: false,
        };
    };
    let id = obj
        .get("id")
        .map(|v| string_or_report(v, &format!("{path}.id"), "id", problems))
        .unwrap_or_default();
    let with_node = |p: Problem| if id.is_empty() { p } else { p.on_node(&id) };
    let mut node_problems = Vec::new();
    let node_type = obj
        .get("node_type")
        .map(|v| {
            string_or_report(
                v,
                &format!("{path}.node_type"),
                "node_type",
                &mut node_problems,
            )
        })
        .unwrap_or_default();
    let params = match obj.get("params") {
        None | Some(Value::Null) => Value::Null,
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            node_problems.push(wrong_type(
                &format!("{path}.params"),
                "params",
                "an object",
                other,
            ));
            Value::Null
        }
    };
    let is_output_node = match obj.get("is_output_node") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            node_problems.push(wrong_type(
                &format!("{path}.is_output_node"),
                "is_output_node",
                "a boolean",
                other,
            ));
            false
        }
    };
    for key in obj.keys() {
        match key.as_str() {
            "id" | "node_type" | "params" | "is_output_node" => {}
            k if IGNORED_NODE_FIELDS.contains(&k) => node_problems.push(Problem::warning(
                ProblemKind::IgnoredField,
                format!("{path}.{k}"),
                format!("{k} is accepted for upstream compatibility and ignored"),
            )),
            k => node_problems.push(unknown_field(&format!("{path}.{k}"), k, "a node")),
        }
    }
    problems.extend(node_problems.into_iter().map(with_node));
    NodeSpec {
        id,
        node_type,
        params,
        is_output_node,
    }
}

fn read_connection(item: &Value, path: &str, problems: &mut Vec<Problem>) -> Connection {
    let Some(obj) = item.as_object() else {
        problems.push(wrong_type(
            path,
            "a connection",
            "an object {from, to}",
            item,
        ));
        return Connection {
            from: String::new(),
            to: String::new(),
        };
    };
    let mut end = |key: &str| {
        obj.get(key)
            .map(|v| string_or_report(v, &format!("{path}.{key}"), key, problems))
            .unwrap_or_default()
    };
    let (from, to) = (end("from"), end("to"));
    for key in obj.keys().filter(|k| *k != "from" && *k != "to") {
        problems.push(unknown_field(&format!("{path}.{key}"), key, "a connection"));
    }
    Connection { from, to }
}

/// The string value, or (after reporting a type error) the value's JSON text as a placeholder
/// so later checks can still refer to it.
fn string_or_report(v: &Value, path: &str, what: &str, problems: &mut Vec<Problem>) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => {
            problems.push(wrong_type(path, what, "a string", other));
            match other {
                Value::Number(_) | Value::Bool(_) => other.to_string(),
                _ => String::new(),
            }
        }
    }
}

fn wrong_type(path: &str, what: &str, expected: &str, found: &Value) -> Problem {
    Problem::error(
        ProblemKind::WrongType,
        path,
        format!("{what} must be {expected}, found {}", describe(found)),
    )
}

fn unknown_field(path: &str, key: &str, container: &str) -> Problem {
    Problem::error(
        ProblemKind::UnknownField,
        path,
        format!("unknown field '{key}' in {container}"),
    )
}

/// "a number (5)", "a list", ... for error messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string (\"{s}\")"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}
