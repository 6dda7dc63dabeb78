//! `remotemedia-runtime`: validate manifests, list node types, run a pipeline over a WAV file.

mod nodes;
mod run;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// RemoteMedia pipeline runtime.
#[derive(Debug, Parser)]
#[command(name = "remotemedia-runtime", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check manifests (JSON, YAML, or Pipeline resources); print one line per problem.
    Validate {
        /// Manifest files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List node types with their params and defaults.
    Nodes {
        /// Print JSON (with each type's params schema) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stream a WAV file through a pipeline in 20 ms frames.
    Run {
        /// Manifest file.
        manifest: PathBuf,
        /// Input WAV file.
        #[arg(long)]
        input: PathBuf,
        /// Where audio from sink nodes goes (one file per audio sink: `OUT.<node>.wav` when
        /// there are several). Without it, audio outputs are summarized on stdout.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Frame length in milliseconds.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        frame_ms: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let registry = remotemedia_runtime_core::nodes::NodeRegistry::with_builtins();
    match cli.command {
        Command::Validate { files } => validate::run(&files, &registry),
        Command::Nodes { json } => nodes::run(&registry, json),
        Command::Run {
            manifest,
            input,
            output,
            frame_ms,
        } => match run::run(&manifest, &input, output.as_deref(), frame_ms, registry) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}
