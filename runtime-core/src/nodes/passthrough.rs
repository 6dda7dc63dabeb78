//! `PassThrough`: forwards every item unchanged.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Io, Node, NodeError, NodeKind, Outputs};
use crate::data::{DataKind, RuntimeData};

/// Forwards every item unchanged.
#[derive(Debug)]
pub struct PassThrough;

/// `PassThrough` takes no params.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PassThroughParams {}

impl NodeKind for PassThrough {
    const NODE_TYPE: &'static str = "PassThrough";
    const DESCRIPTION: &'static str = "Forwards every item unchanged.";
    const IO: Io = Io {
        accepts: ALL,
        produces: ALL,
    };
    type Params = PassThroughParams;

    fn new(_params: PassThroughParams) -> Self {
        Self
    }
}

const ALL: &[DataKind] = &[
    DataKind::Audio,
    DataKind::Text,
    DataKind::Json,
    DataKind::Binary,
    DataKind::Tensor,
];

impl Node for PassThrough {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        out.push(input);
        Ok(())
    }
}
