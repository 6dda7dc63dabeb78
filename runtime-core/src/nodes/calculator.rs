//! `CalculatorNode`: evaluates `{"operation", "operands"}` JSON requests (upstream's test node).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Io, Node, NodeError, NodeKind, Outputs};
use crate::data::{DataKind, RuntimeData};

/// Reads `{"operation": "add"|"subtract"|"multiply"|"divide", "operands": [a, b]}` and emits
/// `{"result", "operation", "operands"}`. A malformed request fails that item only.
#[derive(Debug)]
pub struct CalculatorNode;

/// `CalculatorNode` takes no params.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalculatorParams {}

impl NodeKind for CalculatorNode {
    const NODE_TYPE: &'static str = "CalculatorNode";
    const DESCRIPTION: &'static str =
        "Evaluates {operation, operands: [a, b]} JSON requests (add, subtract, multiply, divide).";
    const IO: Io = Io {
        accepts: &[DataKind::Json],
        produces: &[DataKind::Json],
    };
    type Params = CalculatorParams;

    fn new(_params: CalculatorParams) -> Self {
        Self
    }
}

impl Node for CalculatorNode {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        let RuntimeData::Json(request) = input else {
            return Err(NodeError::unsupported("json", &input));
        };
        let operation = request
            .get("operation")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                NodeError::InvalidInput("request needs a string field 'operation'".into())
            })?;
        let operands = request
            .get("operands")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                NodeError::InvalidInput("request needs a list field 'operands'".into())
            })?;
        let [a, b] = operands.as_slice() else {
            return Err(NodeError::InvalidInput(format!(
                "'operands' must hold 2 numbers, found {}",
                operands.len()
            )));
        };
        let (Some(a), Some(b)) = (a.as_f64(), b.as_f64()) else {
            return Err(NodeError::InvalidInput("'operands' must be numbers".into()));
        };
        let result = match operation {
            "add" => a + b,
            "subtract" => a - b,
            "multiply" => a * b,
            "divide" if b == 0.0 => return Err(NodeError::InvalidInput("division by zero".into())),
            "divide" => a / b,
            other => {
                return Err(NodeError::InvalidInput(format!(
                    "unknown operation '{other}' (use add, subtract, multiply or divide)"
                )));
            }
        };
        out.push(RuntimeData::Json(
            json!({"result": result, "operation": operation, "operands": [a, b]}),
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(request: Value) -> Result<Value, NodeError> {
        let mut out = Outputs::default();
        CalculatorNode.process(RuntimeData::Json(request), &mut out)?;
        match out.drain().next() {
            Some(RuntimeData::Json(v)) => Ok(v),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn computes_each_operation() {
        assert_eq!(
            run(json!({"operation": "add", "operands": [2, 3]})).unwrap()["result"],
            5.0
        );
        assert_eq!(
            run(json!({"operation": "subtract", "operands": [2, 3]})).unwrap()["result"],
            -1.0
        );
        assert_eq!(
            run(json!({"operation": "multiply", "operands": [2, 3]})).unwrap()["result"],
            6.0
        );
        assert_eq!(
            run(json!({"operation": "divide", "operands": [3, 2]})).unwrap()["result"],
            1.5
        );
    }

    #[test]
    fn rejects_bad_requests_with_reasons() {
        assert!(
            run(json!({"operation": "divide", "operands": [1, 0]}))
                .unwrap_err()
                .to_string()
                .contains("zero")
        );
        assert!(
            run(json!({"operation": "pow", "operands": [1, 2]}))
                .unwrap_err()
                .to_string()
                .contains("pow")
        );
        assert!(
            run(json!({"operation": "add", "operands": [1]}))
                .unwrap_err()
                .to_string()
                .contains("2 numbers")
        );
        assert!(
            run(json!({"operands": [1, 2]}))
                .unwrap_err()
                .to_string()
                .contains("operation")
        );
        let mut out = Outputs::default();
        let err = CalculatorNode
            .process(RuntimeData::text("1+1"), &mut out)
            .unwrap_err();
        assert_eq!(
            err,
            NodeError::UnsupportedInput {
                expected: "json",
                found: DataKind::Text
            }
        );
    }
}
