//! One Python node type as a [`NodeFactory`]: params checked against the schema the type
//! declared, and a process per node built.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::node::PythonNode;
use super::{DiscoveryError, NODE_TYPE_PREFIX, PythonOptions};
use crate::data::DataKind;
use crate::nodes::{
    CreateError, Io, NodeFactory, NodeInstance, ParamIssue, ParamsSchema, interned, object_or_empty,
};

/// One entry of `python -m remotemedia_nodes describe`.
#[derive(Debug, Deserialize)]
pub(super) struct Described {
    node_type: String,
    #[serde(default)]
    description: String,
    params_schema: Value,
    accepts: Vec<DataKind>,
    produces: Vec<DataKind>,
}

/// A Python node type.
pub struct PythonFactory {
    node_type: String,
    description: String,
    io: Io,
    params: ParamsSchema,
    options: Arc<PythonOptions>,
}

impl std::fmt::Debug for PythonFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonFactory")
            .field("node_type", &self.node_type)
            .finish_non_exhaustive()
    }
}

impl PythonFactory {
    pub(super) fn new(
        described: Described,
        options: Arc<PythonOptions>,
    ) -> Result<Self, DiscoveryError> {
        let node_type = if described.node_type.starts_with(NODE_TYPE_PREFIX) {
            described.node_type
        } else {
            format!("{NODE_TYPE_PREFIX}{}", described.node_type)
        };
        let params = ParamsSchema::compile(described.params_schema).map_err(|source| {
            DiscoveryError::Schema {
                node_type: node_type.clone(),
                source,
            }
        })?;
        Ok(Self {
            node_type,
            description: described.description,
            io: Io {
                accepts: interned(described.accepts),
                produces: interned(described.produces),
            },
            params,
            options,
        })
    }

    /// The name the Python side registered (the node type without `python:`).
    fn registered_name(&self) -> &str {
        &self.node_type[NODE_TYPE_PREFIX.len()..]
    }
}

impl NodeFactory for PythonFactory {
    fn node_type(&self) -> &str {
        &self.node_type
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn io(&self) -> Io {
        self.io
    }
    fn params_schema(&self) -> &Value {
        self.params.schema()
    }
    fn check_params(&self, params: &Value) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        self.params
            .check(&object_or_empty(params), &self.node_type, &mut issues);
        issues
    }
    fn create(&self, params: &Value) -> Result<NodeInstance, CreateError> {
        let issues = self.check_params(params);
        if !issues.is_empty() {
            return Err(CreateError::InvalidParams(issues));
        }
        let node = PythonNode::spawn(
            self.registered_name(),
            &object_or_empty(params),
            &self.options,
        )
        .map_err(|e| {
            CreateError::Start(format!("{}: {}", self.node_type, crate::report::chain(&e)))
        })?;
        Ok(NodeInstance::Remote(Box::new(node)))
    }
}
