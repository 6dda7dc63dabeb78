//! Why a worker refused to open a session, carried as JSON in the `Closed` reason so the
//! client rebuilds the same [`RunError`] the in-process runner would have returned.

use serde::{Deserialize, Serialize};

use crate::manifest::{Problem, ValidationReport};
use crate::nodes::ParamIssue;
use crate::transport::RunError;

/// What follows `Closed` instead of `Opened`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "refused", rename_all = "snake_case")]
enum Refusal {
    InvalidManifest {
        problems: Vec<Problem>,
    },
    NodeCreation {
        node_id: String,
        issues: Vec<ParamIssue>,
    },
    NodeStart {
        node_id: String,
        reason: String,
    },
    Other {
        reason: String,
    },
}

/// The `Closed` reason for a session that could not open.
pub(crate) fn encode(error: &RunError) -> String {
    let refusal = match error {
        RunError::InvalidManifest(report) => Refusal::InvalidManifest {
            problems: report.problems.clone(),
        },
        RunError::NodeCreation { node_id, issues } => Refusal::NodeCreation {
            node_id: node_id.clone(),
            issues: issues.clone(),
        },
        RunError::NodeStart { node_id, reason } => Refusal::NodeStart {
            node_id: node_id.clone(),
            reason: reason.clone(),
        },
        other => Refusal::Other {
            reason: other.to_string(),
        },
    };
    serde_json::to_string(&refusal).unwrap_or_else(|e| format!("unencodable refusal: {e}"))
}

/// The error a `Closed` reason in answer to `Open` stands for.
pub(crate) fn decode(reason: &str) -> RunError {
    match serde_json::from_str::<Refusal>(reason) {
        Ok(Refusal::InvalidManifest { problems }) => {
            RunError::InvalidManifest(ValidationReport { problems })
        }
        Ok(Refusal::NodeCreation { node_id, issues }) => RunError::NodeCreation { node_id, issues },
        Ok(Refusal::NodeStart { node_id, reason }) => RunError::NodeStart { node_id, reason },
        Ok(Refusal::Other { reason }) => RunError::Refused { reason },
        // A worker that closed for another reason (shutting down) says so in plain text.
        Err(_) => RunError::Refused {
            reason: reason.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ProblemKind;

    #[test]
    fn refusals_round_trip_to_the_same_error() {
        let report = ValidationReport {
            problems: vec![Problem::error(
                ProblemKind::UnknownNodeType,
                "nodes[0].node_type",
                "no node type 'Nope'",
            )],
        };
        match decode(&encode(&RunError::InvalidManifest(report.clone()))) {
            RunError::InvalidManifest(back) => assert_eq!(back, report),
            other => panic!("{other:?}"),
        }
        let issues = vec![ParamIssue {
            field: "gain_db".to_owned(),
            kind: ProblemKind::InvalidParam,
            message: "must be a number".to_owned(),
        }];
        match decode(&encode(&RunError::NodeCreation {
            node_id: "gain".to_owned(),
            issues: issues.clone(),
        })) {
            RunError::NodeCreation {
                node_id,
                issues: back,
            } => {
                assert_eq!((node_id.as_str(), back), ("gain", issues));
            }
            other => panic!("{other:?}"),
        }
        match decode("worker shutting down") {
            RunError::Refused { reason } => assert_eq!(reason, "worker shutting down"),
            other => panic!("{other:?}"),
        }
    }
}
