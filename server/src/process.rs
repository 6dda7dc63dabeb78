//! A server binary's process: logging, the tokio runtime and the exit code.

use std::future::Future;
use std::process::ExitCode;

use remotemedia_runtime_core::serve::BackendError;

/// Sets up logging to stderr (`RUST_LOG`, default `warn`). Call once, first.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs a server binary: parses its `Args` (clap exits on bad flags), sets up logging and a
/// multi-thread tokio runtime, then `run(args)`. The exit code is `run`'s own; 1 when the
/// manifest it was given is invalid (its problems printed, one per line); 2 with the error
/// chain for every other failure.
pub fn main<Args, Fut>(run: impl FnOnce(Args) -> Fut) -> ExitCode
where
    Args: clap::Parser,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    let args = Args::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<BackendError>() {
            Some(BackendError::Manifest(problems)) => {
                eprintln!("{problems}");
                ExitCode::FAILURE
            }
            _ => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}
