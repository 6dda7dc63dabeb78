//! Runtime errors as gRPC statuses: the one place where causes become wire codes.

use remotemedia_runtime_core::{RunError, SessionError};
use tonic::{Code, Status};

use crate::convert::ConvertError;

/// The status for a session that could not open or a unary call that failed.
#[must_use]
pub fn from_run_error(error: &RunError) -> Status {
    let code = match error {
        RunError::InvalidManifest(_) | RunError::NodeCreation { .. } => Code::InvalidArgument,
        RunError::DeadlineExceeded { .. } => Code::DeadlineExceeded,
        RunError::Session(e) => return from_session_error(e),
        RunError::Unavailable { .. } | RunError::NodeStart { .. } => Code::Unavailable,
        _ => Code::FailedPrecondition,
    };
    Status::new(code, error.to_string())
}

/// The status for a failed call on an open session.
#[must_use]
pub fn from_session_error(error: &SessionError) -> Status {
    let code = match error {
        SessionError::InvalidInput(_) => Code::InvalidArgument,
        SessionError::Aborted { .. } => Code::Aborted,
        _ => Code::FailedPrecondition,
    };
    Status::new(code, error.to_string())
}

/// The status for a request whose data is not valid runtime data; `at` is the request field
/// holding it (e.g. `input`).
#[must_use]
pub fn from_convert_error(error: ConvertError, at: &str) -> Status {
    Status::invalid_argument(error.under(at).to_string())
}
