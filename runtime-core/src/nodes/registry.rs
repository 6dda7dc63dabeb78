//! Node types by name. Each type's params are checked against a JSON schema generated from the
//! same Rust type that deserializes them, so the schema, the checks and the code cannot drift.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::params::{ParamsSchema, canonical_names, closest, object_or_empty};
use super::{CreateError, Io, Node, NodeInstance};
use crate::manifest::ProblemKind;

/// A built-in node type: its name, docs, params type and constructor.
pub trait NodeKind: Node + Sized + 'static {
    /// The `node_type` used in manifests.
    const NODE_TYPE: &'static str;
    /// One-line description for `remotemedia-runtime nodes`.
    const DESCRIPTION: &'static str;
    /// Data kinds in and out.
    const IO: Io;
    /// Params, deserialized with unknown fields denied.
    type Params: DeserializeOwned + JsonSchema;
    /// Alternative param names accepted for upstream compatibility, as `(alias, canonical)`.
    const PARAM_ALIASES: &'static [(&'static str, &'static str)] = &[];

    /// Checks that span several params or that a schema cannot express. Field-level type and
    /// range checks belong in the params type (`#[schemars(range(..))]`).
    fn check(_params: &Self::Params) -> Vec<ParamIssue> {
        Vec::new()
    }

    /// Builds a node for one session.
    fn new(params: Self::Params) -> Self;
}

/// One problem with a node's params. `field` is relative to `params` (empty: the whole object).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamIssue {
    /// Param path below `params`, e.g. `target_rate`.
    pub field: String,
    /// [`ProblemKind::UnknownParam`] or [`ProblemKind::InvalidParam`].
    pub kind: ProblemKind,
    /// What is wrong.
    pub message: String,
}

impl ParamIssue {
    /// An invalid value for `field`.
    #[must_use]
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: ProblemKind::InvalidParam,
            message: message.into(),
        }
    }
}

/// One param as described by the schema, for listings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParamInfo {
    /// Param name.
    pub name: String,
    /// Schema type summary (`integer`, `number`, `string`, `"Low" | "Medium" | "High"`, ...).
    #[serde(rename = "type")]
    pub type_name: String,
    /// True when the manifest must give it.
    pub required: bool,
    /// Default value when omitted (which may be `null`: present and null is not absent).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub default: Option<Value>,
    /// Doc comment of the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A field that is present is `Some`, even when it is `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    <Value as serde::Deserialize>::deserialize(d).map(Some)
}

/// A source of nodes of one type. Built-ins implement it through [`NodeKind`]; other crates
/// (Python nodes, test nodes) may implement it directly.
pub trait NodeFactory: Send + Sync {
    /// The `node_type` name.
    fn node_type(&self) -> &str;
    /// One-line description.
    fn description(&self) -> &str;
    /// Data kinds in and out.
    fn io(&self) -> Io;
    /// JSON schema of the params object.
    fn params_schema(&self) -> &Value;
    /// Every problem with `params` (`null` means no params). Empty when valid.
    fn check_params(&self, params: &Value) -> Vec<ParamIssue>;
    /// Other names accepted for params (upstream compatibility), as `(alias, canonical)`.
    fn param_aliases(&self) -> &[(&'static str, &'static str)] {
        &[]
    }
    /// Builds a node for one session from params that passed [`NodeFactory::check_params`].
    ///
    /// # Errors
    /// [`CreateError::InvalidParams`] when `params` are invalid after all, and
    /// [`CreateError::Start`] when a node that works elsewhere could not be started.
    fn create(&self, params: &Value) -> Result<NodeInstance, CreateError>;

    /// The params as listed by `remotemedia-runtime nodes`, derived from the schema.
    fn params(&self) -> Vec<ParamInfo> {
        super::params::params_from_schema(self.params_schema())
    }
}

struct TypedFactory<K: NodeKind> {
    params: ParamsSchema,
    _kind: PhantomData<fn() -> K>,
}

impl<K: NodeKind> TypedFactory<K> {
    fn new() -> Self {
        let schema = serde_json::to_value(schemars::schema_for!(K::Params))
            .expect("a generated schema serializes");
        // A generated schema that does not compile is a bug in the node's params type, found by
        // the registry tests on every built-in.
        let params = ParamsSchema::compile(schema)
            .unwrap_or_else(|e| panic!("schema of {} does not compile: {e}", K::NODE_TYPE));
        Self {
            params,
            _kind: PhantomData,
        }
    }

    fn parse(&self, params: &Value) -> Result<K::Params, Vec<ParamIssue>> {
        let mut issues = Vec::new();
        let params = canonical_names(object_or_empty(params), K::PARAM_ALIASES, &mut issues);
        self.params.check(&params, K::NODE_TYPE, &mut issues);
        if !issues.is_empty() {
            return Err(issues);
        }
        let typed: K::Params = serde_json::from_value(params)
            .map_err(|e| vec![ParamIssue::invalid("", e.to_string())])?;
        let semantic = K::check(&typed);
        if semantic.is_empty() {
            Ok(typed)
        } else {
            Err(semantic)
        }
    }
}

impl<K: NodeKind> NodeFactory for TypedFactory<K> {
    fn node_type(&self) -> &str {
        K::NODE_TYPE
    }
    fn description(&self) -> &str {
        K::DESCRIPTION
    }
    fn io(&self) -> Io {
        K::IO
    }
    fn params_schema(&self) -> &Value {
        self.params.schema()
    }
    fn param_aliases(&self) -> &[(&'static str, &'static str)] {
        K::PARAM_ALIASES
    }
    fn check_params(&self, params: &Value) -> Vec<ParamIssue> {
        self.parse(params).err().unwrap_or_default()
    }
    fn create(&self, params: &Value) -> Result<NodeInstance, CreateError> {
        let params = self.parse(params).map_err(CreateError::InvalidParams)?;
        Ok(NodeInstance::Local(Box::new(K::new(params))))
    }
}

/// Node types by name.
#[derive(Clone, Default)]
pub struct NodeRegistry {
    factories: BTreeMap<String, Arc<dyn NodeFactory>>,
}

impl std::fmt::Debug for NodeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}

impl NodeRegistry {
    /// A registry with no node types.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// A registry holding every built-in node type.
    #[must_use]
    pub fn with_builtins() -> Self {
        use super::*;
        let mut r = Self::empty();
        r.register::<PassThrough>();
        r.register::<CalculatorNode>();
        r.register::<AudioChunkerNode>();
        r.register::<FastResampleNode>();
        r.register::<AudioLevelNode>();
        r.register::<SilenceDetectorNode>();
        r.register::<ClippingDetectorNode>();
        r.register::<ChannelBalanceNode>();
        r.register::<TextCollectorNode>();
        r.register::<ChannelMixerNode>();
        r
    }

    /// Adds a built-in style node type (replacing one of the same name).
    pub fn register<K: NodeKind>(&mut self) {
        self.register_factory(Arc::new(TypedFactory::<K>::new()));
    }

    /// Adds a factory (replacing one of the same name).
    pub fn register_factory(&mut self, factory: Arc<dyn NodeFactory>) {
        self.factories
            .insert(factory.node_type().to_owned(), factory);
    }

    /// The factory for `node_type`.
    #[must_use]
    pub fn get(&self, node_type: &str) -> Option<&Arc<dyn NodeFactory>> {
        self.factories.get(node_type)
    }

    /// All factories, by name.
    pub fn factories(&self) -> impl Iterator<Item = &Arc<dyn NodeFactory>> {
        self.factories.values()
    }

    /// A registered type whose name is close to `node_type` (for "did you mean" hints).
    #[must_use]
    pub fn closest_type(&self, node_type: &str) -> Option<&str> {
        closest(node_type, self.factories.keys().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_schema_compiles_and_rejects_unknown_params() {
        let registry = NodeRegistry::with_builtins();
        assert_eq!(registry.factories().count(), 10);
        for f in registry.factories() {
            let issues = f.check_params(&serde_json::json!({"definitely_not_a_param": 1}));
            assert!(
                issues.iter().any(|i| i.kind == ProblemKind::UnknownParam),
                "{} accepted an unknown param",
                f.node_type()
            );
        }
    }
}
