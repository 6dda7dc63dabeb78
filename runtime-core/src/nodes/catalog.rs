//! [`NodeCatalog`]: every node type a process can run, described (name, description, data kinds
//! in and out, params with defaults, the params' JSON schema). One value, built once per
//! process from its [`NodeRegistry`]; `remotemedia-runtime nodes --json` prints it, a worker
//! sends it to each client that asks over the pod link, and a catalog read back becomes a
//! registry of *described* node types ([`NodeRegistry::from_catalog`]) that checks manifests
//! exactly as far as the schemas go, without being able to run them.
//!
//! The JSON shape is versioned ([`CATALOG_VERSION`]) and documented in `docs/node-catalog.md`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::params::{ParamsSchema, canonical_names, object_or_empty};
use super::{CreateError, Io, NodeFactory, NodeInstance, NodeRegistry, ParamInfo, ParamIssue};
use crate::data::DataKind;

/// Version of the catalog's JSON shape. A reader refuses other versions.
pub const CATALOG_VERSION: u32 = 1;

/// Every node type a process can run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCatalog {
    /// [`CATALOG_VERSION`].
    pub version: u32,
    /// The node types, sorted by name.
    pub node_types: Vec<NodeTypeInfo>,
}

/// One node type, described.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTypeInfo {
    /// The `node_type` manifests name it by (`python:<Name>` for Python node types).
    pub node_type: String,
    /// One line for people.
    pub description: String,
    /// Data kinds it processes.
    pub accepts: Vec<DataKind>,
    /// Data kinds it produces.
    pub produces: Vec<DataKind>,
    /// Its params as listed by `remotemedia-runtime nodes` (name, type, required, default).
    pub params: Vec<ParamInfo>,
    /// Other names accepted for params (upstream compatibility), as `[alias, canonical]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub param_aliases: Vec<(String, String)>,
    /// JSON schema of the params object: what checks them.
    pub params_schema: Value,
}

/// Why a catalog could not be turned back into node types.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog is not JSON of the documented shape.
    #[error("not a node catalog: {0}")]
    Shape(#[source] serde_json::Error),
    /// A version this build does not read.
    #[error("node catalog version {found}; this build reads version {CATALOG_VERSION}")]
    Version {
        /// The version found.
        found: u32,
    },
    /// A node type's params schema does not compile.
    #[error("node type '{node_type}': its params schema does not compile")]
    Schema {
        /// The node type.
        node_type: String,
        /// The compiler's complaint.
        #[source]
        source: super::SchemaError,
    },
}

impl NodeCatalog {
    /// Reads a catalog from its JSON text.
    ///
    /// # Errors
    /// [`CatalogError::Shape`] or [`CatalogError::Version`].
    pub fn from_json(text: &str) -> Result<Self, CatalogError> {
        // The version first, so a newer shape is named as such rather than as unknown fields.
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let Versioned { version } = serde_json::from_str(text).map_err(CatalogError::Shape)?;
        if version != CATALOG_VERSION {
            return Err(CatalogError::Version { found: version });
        }
        serde_json::from_str(text).map_err(CatalogError::Shape)
    }

    /// The catalog as JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Plain data (strings, numbers, JSON values): serializing it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl NodeRegistry {
    /// Describes every registered node type.
    #[must_use]
    pub fn catalog(&self) -> NodeCatalog {
        NodeCatalog {
            version: CATALOG_VERSION,
            node_types: self
                .factories()
                .map(|f| {
                    let io = f.io();
                    NodeTypeInfo {
                        node_type: f.node_type().to_owned(),
                        description: f.description().to_owned(),
                        accepts: io.accepts.to_vec(),
                        produces: io.produces.to_vec(),
                        params: f.params(),
                        param_aliases: f
                            .param_aliases()
                            .iter()
                            .map(|(a, c)| ((*a).to_owned(), (*c).to_owned()))
                            .collect(),
                        params_schema: f.params_schema().clone(),
                    }
                })
                .collect(),
        }
    }

    /// The node types `catalog` describes, as factories that check params against their
    /// schemas (and aliases) but cannot create nodes: for validating manifests that will run
    /// in the process the catalog came from.
    ///
    /// # Errors
    /// [`CatalogError::Schema`] when a params schema does not compile.
    pub fn from_catalog(catalog: &NodeCatalog) -> Result<Self, CatalogError> {
        let mut registry = Self::default();
        for info in &catalog.node_types {
            let params = ParamsSchema::compile(info.params_schema.clone()).map_err(|source| {
                CatalogError::Schema {
                    node_type: info.node_type.clone(),
                    source,
                }
            })?;
            registry.register_factory(Arc::new(Described {
                io: Io {
                    accepts: super::interned(info.accepts.clone()),
                    produces: super::interned(info.produces.clone()),
                },
                aliases: info
                    .param_aliases
                    .iter()
                    .map(|(a, c)| (leak(a), leak(c)))
                    .collect(),
                info: info.clone(),
                params,
            }));
        }
        Ok(registry)
    }
}

/// A node type known from a catalog: it checks params, and runs elsewhere.
struct Described {
    info: NodeTypeInfo,
    io: Io,
    aliases: Vec<(&'static str, &'static str)>,
    params: ParamsSchema,
}

impl NodeFactory for Described {
    fn node_type(&self) -> &str {
        &self.info.node_type
    }
    fn description(&self) -> &str {
        &self.info.description
    }
    fn io(&self) -> Io {
        self.io
    }
    fn params_schema(&self) -> &Value {
        self.params.schema()
    }
    fn param_aliases(&self) -> &[(&'static str, &'static str)] {
        &self.aliases
    }
    fn check_params(&self, params: &Value) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        let params = canonical_names(object_or_empty(params), &self.aliases, &mut issues);
        self.params
            .check(&params, &self.info.node_type, &mut issues);
        issues
    }
    fn create(&self, _params: &Value) -> Result<NodeInstance, CreateError> {
        Err(CreateError::Start(format!(
            "{} is only described here (from a node catalog); it runs in the process the \
             catalog came from",
            self.info.node_type
        )))
    }
    fn params(&self) -> Vec<ParamInfo> {
        self.info.params.clone()
    }
}

/// Param alias names live as long as the process, as the built-ins' `&'static str` do. A
/// catalog has a handful; a process reads one per worker it talks to.
fn leak(name: &str) -> &'static str {
    Box::leak(name.to_owned().into_boxed_str())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::manifest::ProblemKind;

    #[test]
    fn a_catalog_read_back_checks_params_as_the_real_types_do() {
        let builtins = NodeRegistry::with_builtins();
        let text = builtins.catalog().to_json();
        let catalog = NodeCatalog::from_json(&text).expect("reads back");
        assert_eq!(catalog, builtins.catalog());
        let described = NodeRegistry::from_catalog(&catalog).expect("schemas compile");
        for real in builtins.factories() {
            let copy = described.get(real.node_type()).expect("every type");
            for params in [
                json!({"definitely_not_a_param": 1}),
                json!({"target_rate": 0}),
                json!({"target_rate": "fast"}),
                json!({"chunk_size": 256}),
                json!(null),
            ] {
                assert_eq!(
                    copy.check_params(&params),
                    real.check_params(&params),
                    "{} with {params}",
                    real.node_type()
                );
            }
            assert!(matches!(
                copy.create(&json!(null)),
                Err(CreateError::Start(_))
            ));
        }
    }

    #[test]
    fn aliases_travel_with_the_catalog() {
        let builtins = NodeRegistry::with_builtins();
        let catalog = builtins.catalog();
        let with_alias = catalog
            .node_types
            .iter()
            .find(|t| !t.param_aliases.is_empty())
            .expect("a built-in with an upstream alias");
        let (alias, _) = &with_alias.param_aliases[0];
        let described = NodeRegistry::from_catalog(&catalog).expect("compiles");
        let issues = described
            .get(&with_alias.node_type)
            .expect("there")
            .check_params(&json!({ alias.as_str(): "not even the right type" }));
        assert!(
            issues.iter().all(|i| i.kind != ProblemKind::UnknownParam),
            "{issues:?}"
        );
    }

    #[test]
    fn other_versions_and_shapes_are_refused_by_name() {
        let err = NodeCatalog::from_json(r#"{"version": 2, "node_types": [], "new": 1}"#)
            .expect_err("a newer shape");
        assert_eq!(
            err.to_string(),
            "node catalog version 2; this build reads version 1"
        );
        assert!(matches!(
            NodeCatalog::from_json(r#"{"version": 1, "types": []}"#),
            Err(CatalogError::Shape(_))
        ));
    }
}
