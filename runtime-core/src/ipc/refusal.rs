//! A worker's refusal to open a session, both ways: the [`RunError`] the in-process runner
//! returned becomes the codec's typed [`Refusal`] in `Closed`, and the client turns that
//! back into the same [`RunError`].

use super::codec::{Ending, Refusal};
use crate::manifest::ValidationReport;
use crate::transport::RunError;

/// What the worker sends instead of `Opened` when opening failed with `error`.
pub(crate) fn refusal_of(error: RunError) -> Refusal {
    match error {
        RunError::InvalidManifest(report) => Refusal::InvalidManifest {
            problems: report.problems,
        },
        RunError::NodeCreation { node_id, issues } => Refusal::NodeCreation { node_id, issues },
        RunError::NodeStart { node_id, reason } => Refusal::NodeStart { node_id, reason },
        other => Refusal::Other {
            reason: other.to_string(),
        },
    }
}

/// The error a client's `Open` ends with when the worker answered `Closed(ending)`.
pub(crate) fn open_error(ending: Ending) -> RunError {
    match ending {
        Ending::Refused(Refusal::InvalidManifest { problems }) => {
            RunError::InvalidManifest(ValidationReport { problems })
        }
        Ending::Refused(Refusal::NodeCreation { node_id, issues }) => {
            RunError::NodeCreation { node_id, issues }
        }
        Ending::Refused(Refusal::NodeStart { node_id, reason }) => {
            RunError::NodeStart { node_id, reason }
        }
        Ending::Refused(Refusal::Other { reason }) | Ending::Aborted { reason } => {
            RunError::Refused { reason }
        }
        Ending::Completed => RunError::Refused {
            reason: "the worker ended the session before opening it".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Problem, ProblemKind};
    use crate::nodes::ParamIssue;

    #[test]
    fn refusals_round_trip_to_the_same_error() {
        let report = ValidationReport {
            problems: vec![Problem::error(
                ProblemKind::UnknownNodeType,
                "nodes[0].node_type",
                "no node type 'Nope'",
            )],
        };
        let back = open_error(Ending::Refused(refusal_of(RunError::InvalidManifest(
            report.clone(),
        ))));
        match back {
            RunError::InvalidManifest(back) => assert_eq!(back, report),
            other => panic!("{other:?}"),
        }
        let issues = vec![ParamIssue {
            field: "gain_db".to_owned(),
            kind: ProblemKind::InvalidParam,
            message: "must be a number".to_owned(),
        }];
        let back = open_error(Ending::Refused(refusal_of(RunError::NodeCreation {
            node_id: "gain".to_owned(),
            issues: issues.clone(),
        })));
        match back {
            RunError::NodeCreation {
                node_id,
                issues: back,
            } => {
                assert_eq!((node_id.as_str(), back), ("gain", issues));
            }
            other => panic!("{other:?}"),
        }
        let shutting_down = Ending::Aborted {
            reason: "worker shutting down".to_owned(),
        };
        match open_error(shutting_down) {
            RunError::Refused { reason } => assert_eq!(reason, "worker shutting down"),
            other => panic!("{other:?}"),
        }
    }
}
