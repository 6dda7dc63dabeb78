//! `remotemedia-runtime`: validate manifests, list node types, run a pipeline over a WAV file,
//! serve a pipeline on a pod link.

mod nodes;
mod run;
mod serve;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use remotemedia_runtime_core::ipc::link::{DEFAULT_LINK, LINK_ENV};
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::python;
use remotemedia_server::LinkFlags;

/// RemoteMedia pipeline runtime.
#[derive(Debug, Parser)]
#[command(name = "remotemedia-runtime", version, about)]
struct Cli {
    /// Python node types (`python:<Name>`) from the interpreter in REMOTEMEDIA_PYTHON (default
    /// python3): `auto` lists them when that interpreter has the remotemedia_nodes package,
    /// `require` fails without them, `off` never asks.
    #[arg(long, global = true, value_enum, default_value_t = PythonNodes::Auto)]
    python_nodes: PythonNodes,
    /// The Python interpreter for Python node types and their processes.
    #[arg(
        long,
        global = true,
        env = python::PYTHON_ENV,
        default_value = python::DEFAULT_INTERPRETER
    )]
    python_interpreter: std::ffi::OsString,
    /// Seconds a Python node process may take to answer one item; one that does not is
    /// replaced by a fresh process and the item fails naming the node.
    #[arg(long, global = true, default_value_t = 30)]
    python_item_timeout_secs: u64,
    #[command(flatten)]
    link: LinkFlags,
    #[command(subcommand)]
    command: Command,
}

/// Whether this process runs Python node types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PythonNodes {
    Auto,
    Require,
    Off,
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
        /// Fail unless Python node types are listed (`--python-nodes require`).
        #[arg(long)]
        python: bool,
    },
    /// Stream a WAV file through a pipeline in 20 ms frames, in this process or (with
    /// `--connect`) in the worker serving a link.
    Run {
        /// Manifest file (optional with --connect: the worker's own pipeline).
        #[arg(required_unless_present = "connect")]
        manifest: Option<PathBuf>,
        /// Run in the worker serving this link instead of in this process.
        #[arg(long, value_name = "NAME")]
        connect: Option<String>,
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
    /// Serve a pipeline to sidecars and local clients over iceoryx2 shared memory until
    /// SIGTERM.
    Serve {
        /// Manifest file.
        #[arg(long)]
        manifest: PathBuf,
        /// Link name; two workers on one host need different names.
        #[arg(long, env = LINK_ENV, default_value = DEFAULT_LINK)]
        name: String,
        /// Serve /metrics, /livez and /readyz on this address.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<SocketAddr>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    remotemedia_server::init_tracing();
    let registry = match node_registry(&cli) {
        Ok(registry) => registry,
        Err(e) => return report(Err(e)),
    };
    match cli.command {
        Command::Validate { files } => validate::run(&files, &registry),
        Command::Nodes { json, .. } => nodes::run(&registry, json),
        Command::Run {
            manifest,
            connect,
            input,
            output,
            frame_ms,
        } => report(match (connect, manifest) {
            (Some(link), manifest) => run::run_connected(
                &link,
                cli.link,
                manifest.as_deref(),
                &input,
                output.as_deref(),
                frame_ms,
                &registry,
            ),
            (None, Some(manifest)) => {
                run::run(&manifest, &input, output.as_deref(), frame_ms, registry)
            }
            (None, None) => unreachable!("clap requires a manifest without --connect"),
        }),
        Command::Serve {
            manifest,
            name,
            metrics_listen,
        } => report(serve::serve(
            &manifest,
            &name,
            metrics_listen,
            cli.link,
            registry,
        )),
    }
}

/// The node types this process runs, built once: the built-ins, plus the Python ones as
/// `--python-nodes` says.
fn node_registry(cli: &Cli) -> anyhow::Result<NodeRegistry> {
    let mut registry = NodeRegistry::with_builtins();
    let wanted = match (cli.python_nodes, &cli.command) {
        (_, Command::Nodes { python: true, .. }) => PythonNodes::Require,
        (wanted, _) => wanted,
    };
    if wanted == PythonNodes::Off {
        return Ok(registry);
    }
    let options = python::PythonOptions {
        interpreter: cli.python_interpreter.clone(),
        item_timeout: std::time::Duration::from_secs(cli.python_item_timeout_secs),
        ..python::PythonOptions::default()
    };
    match python::PythonNodes::discover(options) {
        Ok(found) => found.register(&mut registry),
        Err(absent) if absent.is_absent() && wanted == PythonNodes::Auto => {
            tracing::info!(reason = %absent, "no Python node types");
        }
        Err(e) => return Err(e).context("listing the Python node types"),
    }
    Ok(registry)
}

/// Exit code 2 and the error chain on stderr for failures other than a bad manifest.
fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use remotemedia_runtime_core::pod::{CatalogProbe, Worker};

    use super::*;

    /// The args the operator renders for the runtime container parse here to what it meant: a
    /// flag renamed on one side only fails this test.
    #[test]
    fn parses_the_args_the_operator_renders() {
        let worker = Worker {
            link: "voice".to_owned(),
        };
        let argv = std::iter::once("remotemedia-runtime".to_owned()).chain(worker.args());
        let cli = Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("the rendered args do not parse: {e}"));
        let Command::Serve {
            manifest,
            name,
            metrics_listen,
        } = cli.command
        else {
            panic!("not serve: {:?}", cli.command);
        };
        assert_eq!(manifest, Worker::manifest());
        assert_eq!(name, "voice");
        assert_eq!(metrics_listen, Some(Worker::metrics_listen()));
    }

    /// The catalog probe's args parse to `nodes --json`.
    #[test]
    fn parses_the_catalog_probe_args() {
        let argv = std::iter::once("remotemedia-runtime".to_owned()).chain(CatalogProbe.args());
        let cli = Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("the rendered args do not parse: {e}"));
        assert!(
            matches!(
                cli.command,
                Command::Nodes {
                    json: true,
                    python: false
                }
            ),
            "{:?}",
            cli.command
        );
        assert_eq!(cli.python_nodes, PythonNodes::Auto);
    }
}
