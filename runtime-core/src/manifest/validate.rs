//! Semantic checks of a [`Manifest`]: version, ids, edges, cycles, node types and params.
//! Pure: it reads the manifest and the registry and returns every problem found.

use std::collections::{HashMap, HashSet};

use super::{Manifest, Problem, ProblemKind, SUPPORTED_VERSIONS};
use crate::graph::find_cycles;
use crate::nodes::NodeRegistry;

/// Longest node id: ids become parts of IPC service names and metric labels.
pub const MAX_NODE_ID_LEN: usize = 63;

/// Returns every problem with `manifest`; an empty list means it can run.
#[must_use]
pub fn validate(manifest: &Manifest, registry: &NodeRegistry) -> Vec<Problem> {
    let mut problems = Vec::new();
    if !manifest.version.is_empty() && !SUPPORTED_VERSIONS.contains(&manifest.version.as_str()) {
        problems.push(Problem::error(
            ProblemKind::UnsupportedVersion,
            "version",
            format!(
                "unsupported manifest version '{}'; this runtime reads \"v1\"",
                manifest.version
            ),
        ));
    }
    if manifest.nodes.is_empty() {
        problems.push(Problem::error(
            ProblemKind::NoNodes,
            "nodes",
            "the pipeline has no nodes",
        ));
    }
    check_nodes(manifest, registry, &mut problems);
    check_connections(manifest, &mut problems);
    problems
}

fn check_nodes(manifest: &Manifest, registry: &NodeRegistry, problems: &mut Vec<Problem>) {
    let mut first_index: HashMap<&str, usize> = HashMap::new();
    for (i, node) in manifest.nodes.iter().enumerate() {
        let path = format!("nodes[{i}]");
        if let Some(message) = node_id_problem(&node.id) {
            problems.push(
                Problem::error(ProblemKind::InvalidNodeId, format!("{path}.id"), message)
                    .on_node(&node.id),
            );
        } else if let Some(&first) = first_index.get(node.id.as_str()) {
            problems.push(
                Problem::error(
                    ProblemKind::DuplicateNodeId,
                    format!("{path}.id"),
                    format!(
                        "duplicate node id '{}' (first used by nodes[{first}])",
                        node.id
                    ),
                )
                .on_node(&node.id),
            );
        } else {
            first_index.insert(&node.id, i);
        }

        let Some(factory) = registry.get(&node.node_type) else {
            let message = if node.node_type.is_empty() {
                "node has no node_type".to_owned()
            } else {
                let hint = registry
                    .closest_type(&node.node_type)
                    .map(|t| format!("; did you mean '{t}'?"))
                    .unwrap_or_default();
                format!("unknown node type '{}'{hint}", node.node_type)
            };
            problems.push(
                Problem::error(
                    ProblemKind::UnknownNodeType,
                    format!("{path}.node_type"),
                    message,
                )
                .on_node(&node.id),
            );
            continue;
        };
        for issue in factory.check_params(&node.params) {
            let param_path = if issue.field.is_empty() {
                format!("{path}.params")
            } else {
                format!("{path}.params.{}", issue.field)
            };
            problems.push(Problem::error(issue.kind, param_path, issue.message).on_node(&node.id));
        }
    }
}

fn node_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("node has no id".into());
    }
    if id.len() > MAX_NODE_ID_LEN {
        return Some(format!(
            "node id '{id}' is longer than {MAX_NODE_ID_LEN} characters"
        ));
    }
    let valid_start = id.starts_with(|c: char| c.is_ascii_alphanumeric());
    let valid_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    (!(valid_start && valid_chars)).then(|| {
        format!("node id '{id}' must start with a letter or digit and use only letters, digits, '_', '-' and '.'")
    })
}

fn check_connections(manifest: &Manifest, problems: &mut Vec<Problem>) {
    let index: HashMap<&str, usize> = manifest
        .nodes
        .iter()
        .enumerate()
        .rev()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let mut successors = vec![Vec::new(); manifest.nodes.len()];
    let mut self_loops = HashSet::new();

    for (i, c) in manifest.connections.iter().enumerate() {
        let path = format!("connections[{i}]");
        let mut endpoints_known = true;
        for (field, id) in [("from", &c.from), ("to", &c.to)] {
            if index.contains_key(id.as_str()) {
                continue;
            }
            endpoints_known = false;
            let message = if id.is_empty() {
                format!("connection has no '{field}' node")
            } else {
                format!("connection {field} '{id}', which is not a node of this pipeline")
            };
            problems.push(Problem::error(
                ProblemKind::UnknownEdgeEndpoint,
                format!("{path}.{field}"),
                message,
            ));
        }
        if !endpoints_known {
            continue;
        }
        if c.from == c.to {
            if self_loops.insert(c.from.as_str()) {
                problems.push(
                    Problem::error(
                        ProblemKind::SelfLoop,
                        &path,
                        format!("node '{}' is connected to itself", c.from),
                    )
                    .on_node(&c.from),
                );
            }
            continue;
        }
        if let Some(&first) = seen.get(&(c.from.as_str(), c.to.as_str())) {
            problems.push(
                Problem::error(
                    ProblemKind::DuplicateEdge,
                    &path,
                    format!(
                        "connection {} -> {} is listed twice (first at connections[{first}]); \
                         it would deliver every item twice",
                        c.from, c.to
                    ),
                )
                .on_node(&c.from),
            );
            continue;
        }
        seen.insert((c.from.as_str(), c.to.as_str()), i);
        successors[index[c.from.as_str()]].push(index[c.to.as_str()]);
    }

    for cycle in find_cycles(&successors) {
        let ids: Vec<&str> = cycle
            .iter()
            .map(|&n| manifest.nodes[n].id.as_str())
            .collect();
        let first = ids[0];
        // Point at the first connection that belongs to the cycle.
        let edge = manifest
            .connections
            .iter()
            .position(|c| {
                ids.iter()
                    .position(|&id| id == c.from)
                    .is_some_and(|k| ids[(k + 1) % ids.len()] == c.to)
            })
            .map_or_else(|| "connections".to_owned(), |k| format!("connections[{k}]"));
        problems.push(
            Problem::error(
                ProblemKind::Cycle,
                edge,
                format!("connections form a cycle: {} -> {first}", ids.join(" -> ")),
            )
            .on_node(first),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_rules() {
        assert!(node_id_problem("resample_1").is_none());
        assert!(node_id_problem("a.b-c").is_none());
        assert!(node_id_problem("").unwrap().contains("no id"));
        assert!(node_id_problem("has space").is_some());
        assert!(node_id_problem("-lead").is_some());
        assert!(node_id_problem(&"x".repeat(64)).unwrap().contains("longer"));
    }
}
