//! `remotemedia-jsonl`: serves a pipeline as JSON Lines on a Unix socket.
//!
//! ```text
//! remotemedia-jsonl --manifest examples/pipelines/calculator.json --socket /tmp/rm.sock
//! printf '%s\n' '{"data":{"type":"json","data":{"operation":"add","operands":[2,3]}}}' \
//!   | socat - UNIX-CONNECT:/tmp/rm.sock
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use remotemedia_example_jsonl::server::{ServeOptions, serve};
use remotemedia_runtime_core::PipelineRunner;
use remotemedia_runtime_core::manifest::{Format, Manifest};

/// Serves a pipeline as JSON Lines over a Unix socket (one session per connection).
#[derive(Parser)]
struct Args {
    /// The pipeline to serve (YAML or JSON manifest, or a Pipeline resource).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Where to listen; an existing socket file there is replaced.
    #[arg(long)]
    socket: PathBuf,
    /// Let clients open sessions with their own manifests.
    #[arg(long)]
    allow_client_manifests: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut runner = PipelineRunner::new();
    match &args.manifest {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let format = Format::detect(path.to_str(), &text);
            let manifest = Manifest::from_text(&text, format, runner.registry())
                .map_err(|report| anyhow::anyhow!("{}: {report}", path.display()))?;
            runner = runner.serving(manifest)?;
        }
        None if args.allow_client_manifests => {}
        None => anyhow::bail!("give --manifest, --allow-client-manifests, or both"),
    }
    let _ = std::fs::remove_file(&args.socket);
    let listener = tokio::net::UnixListener::bind(&args.socket)
        .with_context(|| format!("binding {}", args.socket.display()))?;
    let options = ServeOptions {
        allow_client_manifests: args.allow_client_manifests,
    };
    tracing::info!(socket = %args.socket.display(), "serving");
    serve(
        listener,
        Arc::new(runner),
        options,
        remotemedia_runtime_core::shutdown::requested(),
    )
    .await;
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}
