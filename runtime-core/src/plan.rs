//! [`PipelinePlan`]: a manifest validated once against a node registry, with its graph built
//! and every node's factory resolved. Sessions start from a plan ([`PipelineRunner::start`]):
//! nothing is validated again per session, and nothing in starting one can find the manifest
//! invalid. The model is vector's topology: validate everything, then spawn.
//!
//! [`PipelineRunner::start`]: crate::PipelineRunner::start

use std::sync::Arc;

use crate::graph::{Graph, GraphError};
use crate::manifest::{Manifest, Problem, ProblemKind, ValidationReport, validate};
use crate::nodes::{NodeFactory, NodeRegistry};
use crate::transport::RunError;

/// A pipeline ready to start sessions from.
pub struct PipelinePlan {
    manifest: Arc<Manifest>,
    graph: Graph,
    /// One per node, in `manifest.nodes` order.
    factories: Vec<Arc<dyn NodeFactory>>,
}

impl std::fmt::Debug for PipelinePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelinePlan")
            .field("pipeline", &self.manifest.name())
            .field("nodes", &self.factories.len())
            .finish_non_exhaustive()
    }
}

impl PipelinePlan {
    /// Validates `manifest` against `registry` and plans it.
    ///
    /// # Errors
    /// [`RunError::InvalidManifest`] with every problem when it does not validate.
    pub fn new(manifest: Arc<Manifest>, registry: &NodeRegistry) -> Result<Self, RunError> {
        let report = ValidationReport {
            problems: validate(&manifest, registry),
        };
        if report.has_errors() {
            return Err(RunError::InvalidManifest(report));
        }
        Self::resolve(manifest, registry)
    }

    /// Plans a manifest whose validation against `registry` already passed (as
    /// [`crate::manifest::check_document`] does, with lines). Builds the graph and resolves
    /// the factories; a manifest that was not in fact valid is still an error, never a panic.
    ///
    /// # Errors
    /// [`RunError::InvalidManifest`] naming the node type or edge that does not resolve.
    pub fn resolve(manifest: Arc<Manifest>, registry: &NodeRegistry) -> Result<Self, RunError> {
        let graph = Graph::from_manifest(&manifest).map_err(|e| {
            let kind = match e {
                GraphError::UnknownEndpoint { .. } => ProblemKind::UnknownEdgeEndpoint,
                GraphError::Cycle(_) => ProblemKind::Cycle,
            };
            invalid(Problem::error(kind, "connections", e.to_string()))
        })?;
        let factories = manifest
            .nodes
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                registry.get(&spec.node_type).cloned().ok_or_else(|| {
                    invalid(
                        Problem::error(
                            ProblemKind::UnknownNodeType,
                            format!("nodes[{i}].node_type"),
                            format!("unknown node type '{}'", spec.node_type),
                        )
                        .on_node(spec.id.clone()),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            manifest,
            graph,
            factories,
        })
    }

    /// The manifest.
    #[must_use]
    pub fn manifest(&self) -> &Arc<Manifest> {
        &self.manifest
    }

    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Each node's spec with its factory, in manifest order.
    pub(crate) fn nodes(
        &self,
    ) -> impl Iterator<Item = (&crate::manifest::NodeSpec, &Arc<dyn NodeFactory>)> {
        self.manifest.nodes.iter().zip(&self.factories)
    }
}

fn invalid(problem: Problem) -> RunError {
    RunError::InvalidManifest(ValidationReport {
        problems: vec![problem],
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::manifest::Format;

    fn manifest(value: &serde_json::Value) -> Arc<Manifest> {
        let registry = NodeRegistry::with_builtins();
        Manifest::from_text(&value.to_string(), Format::Json, &registry).unwrap()
    }

    #[test]
    fn a_valid_manifest_plans_with_a_factory_per_node() {
        let registry = NodeRegistry::with_builtins();
        let plan = PipelinePlan::new(
            manifest(&json!({"version": "v1", "nodes": [
                {"id": "a", "node_type": "PassThrough"},
                {"id": "b", "node_type": "AudioLevelNode"},
            ], "connections": [{"from": "a", "to": "b"}]})),
            &registry,
        )
        .expect("plans");
        let types: Vec<_> = plan.nodes().map(|(_, f)| f.node_type()).collect();
        assert_eq!(types, ["PassThrough", "AudioLevelNode"]);
    }

    #[test]
    fn a_registry_without_the_type_is_an_error_naming_node_and_path_not_a_panic() {
        let planned = manifest(&json!({"version": "v1", "nodes": [
            {"id": "a", "node_type": "PassThrough"},
        ]}));
        let Err(RunError::InvalidManifest(report)) =
            PipelinePlan::resolve(planned.clone(), &NodeRegistry::default())
        else {
            panic!("resolved against an empty registry");
        };
        let problem = &report.problems[0];
        assert_eq!(problem.kind, ProblemKind::UnknownNodeType);
        assert_eq!(problem.path, "nodes[0].node_type");
        assert_eq!(problem.node_id.as_deref(), Some("a"));
        assert!(matches!(
            PipelinePlan::new(planned, &NodeRegistry::default()),
            Err(RunError::InvalidManifest(_))
        ));
    }
}
