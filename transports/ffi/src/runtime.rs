//! The one runner every call of this process shares.

use std::sync::OnceLock;

use remotemedia_runtime_core::PipelineRunner;

/// The in-process runner with the built-in node types. Sessions run on the tokio runtime of
/// `pyo3-async-runtimes` (one worker thread per core), never on the Python thread.
pub(crate) fn runner() -> &'static PipelineRunner {
    static RUNNER: OnceLock<PipelineRunner> = OnceLock::new();
    RUNNER.get_or_init(PipelineRunner::new)
}
