//! Python nodes: node types written in Python, each instance running in a process of its own,
//! linked to the runtime over the same iceoryx2 pipes as the pod link.
//!
//! A manifest names a Python node type `python:<Name>`, where `<Name>` is what the class was
//! registered as with `@remotemedia_nodes.node("<Name>", ...)` (package
//! `runtime-core/python`). [`PythonNodes::discover`] asks the interpreter (env
//! `REMOTEMEDIA_PYTHON`, default `python3`) which types are installed, by running
//! `python -m remotemedia_nodes describe`, and registers one factory per type: params are
//! checked against the schema the type declared before anything starts.
//!
//! Each session gets its own process per Python node, spawned when the session opens:
//!
//! ```text
//!  runtime (this crate)                               python -m remotemedia_nodes serve
//!  PythonNode --P/in  (Input | EndInput | Close) -->  Node.process / Node.finish
//!             <-P/out (Opened, then Output* Error? Done per input) --
//!  stdin pipe ------------------------------------->  EOF = the runtime is gone: exit
//!  stderr lines <-----------------------------------  tracebacks, prints: logged
//! ```
//!
//! A process that exits while its session runs fails that session within milliseconds
//! (SIGCHLD, not a heartbeat); one that outlives its session is killed after a grace period.
//! Both are reaped.

mod factory;
mod node;
mod process;

use std::ffi::OsString;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

pub use factory::PythonFactory;

use crate::nodes::NodeRegistry;

/// Env var the runtime binary reads the Python interpreter from (clap `env`); the library
/// reads no environment.
pub const PYTHON_ENV: &str = "REMOTEMEDIA_PYTHON";
/// The interpreter when none is named.
pub const DEFAULT_INTERPRETER: &str = "python3";
/// Prefix of Python node types in manifests.
pub const NODE_TYPE_PREFIX: &str = crate::nodes::PYTHON_NODE_TYPE_PREFIX;

/// How Python node processes are started.
#[derive(Clone, Debug)]
pub struct PythonOptions {
    /// The interpreter (a path or a name on `PATH`).
    pub interpreter: OsString,
    /// Messages the runtime may queue for a node process.
    pub depth: usize,
    /// How long a node process spins for its next message before it sleeps: latency for
    /// CPU while busy. Idle processes sleep either way.
    pub spin: Duration,
    /// How long a new process may take to say it is ready.
    pub startup_timeout: Duration,
    /// How long a process may take to answer one item (all its outputs and `Done`); one that
    /// does not is replaced by a fresh process and the item fails naming the node.
    pub item_timeout: Duration,
    /// How long a process whose session ended may take to exit before it is killed.
    pub exit_grace: Duration,
    /// Environment added for the interpreter, e.g. `REMOTEMEDIA_PYTHON_MODULES` to load node
    /// modules that are not installed as entry points.
    pub env: Vec<(OsString, OsString)>,
}

impl Default for PythonOptions {
    fn default() -> Self {
        Self {
            interpreter: DEFAULT_INTERPRETER.into(),
            depth: 8,
            spin: Duration::from_micros(200),
            startup_timeout: Duration::from_secs(30),
            item_timeout: Duration::from_secs(30),
            exit_grace: Duration::from_secs(2),
            env: Vec::new(),
        }
    }
}

/// Why Python node types could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// There is no such interpreter.
    #[error("no Python interpreter {interpreter:?} (set {PYTHON_ENV} to choose another)")]
    NoInterpreter {
        /// The interpreter.
        interpreter: OsString,
        /// Why.
        source: std::io::Error,
    },
    /// The interpreter runs but has no `remotemedia_nodes` package.
    #[error(
        "{interpreter:?} has no remotemedia_nodes package; install it into that interpreter: pip install ./runtime-core/python"
    )]
    NoPackage {
        /// The interpreter.
        interpreter: OsString,
    },
    /// The interpreter could not be run.
    #[error(
        "could not run the Python interpreter {interpreter:?} (set {PYTHON_ENV} to choose another)"
    )]
    Interpreter {
        /// The interpreter.
        interpreter: OsString,
        /// Why.
        source: std::io::Error,
    },
    /// `python -m remotemedia_nodes describe` failed.
    #[error("{interpreter:?} -m remotemedia_nodes describe failed ({status}): {stderr}")]
    Describe {
        /// The interpreter.
        interpreter: OsString,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of what it printed to stderr.
        stderr: String,
    },
    /// It printed something other than the expected JSON.
    #[error("{interpreter:?} -m remotemedia_nodes describe printed unexpected output")]
    Output {
        /// The interpreter.
        interpreter: OsString,
        /// What was wrong with it.
        #[source]
        source: serde_json::Error,
    },
    /// A node type declared a params schema that does not compile.
    #[error("Python node type '{node_type}' declares an invalid params schema")]
    Schema {
        /// The node type.
        node_type: String,
        /// The schema compiler's complaint.
        #[source]
        source: crate::nodes::SchemaError,
    },
}

impl DiscoveryError {
    /// True when the interpreter provides no Python node types at all (it is missing, or has
    /// no `remotemedia_nodes`), as opposed to an environment that is there but broken (a node
    /// module that does not import, an invalid schema).
    #[must_use]
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::NoInterpreter { .. } | Self::NoPackage { .. })
    }
}

/// The Python node types an interpreter provides.
#[derive(Debug)]
pub struct PythonNodes {
    factories: Vec<Arc<PythonFactory>>,
}

impl PythonNodes {
    /// Runs `python -m remotemedia_nodes describe` and prepares a factory per node type.
    /// Blocks for as long as the interpreter takes to import the node modules.
    ///
    /// # Errors
    /// See [`DiscoveryError`].
    pub fn discover(options: PythonOptions) -> Result<Self, DiscoveryError> {
        let interpreter = options.interpreter.clone();
        let output = Command::new(&interpreter)
            .args(["-m", "remotemedia_nodes", "describe"])
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .output()
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => DiscoveryError::NoInterpreter {
                    interpreter: interpreter.clone(),
                    source,
                },
                _ => DiscoveryError::Interpreter {
                    interpreter: interpreter.clone(),
                    source,
                },
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("No module named remotemedia_nodes") {
                return Err(DiscoveryError::NoPackage { interpreter });
            }
            return Err(DiscoveryError::Describe {
                interpreter,
                status: output.status,
                stderr: last_lines(&stderr, 3),
            });
        }
        let described: Vec<factory::Described> =
            serde_json::from_slice(&output.stdout).map_err(|source| DiscoveryError::Output {
                interpreter: interpreter.clone(),
                source,
            })?;
        let options = Arc::new(options);
        let factories = described
            .into_iter()
            .map(|d| PythonFactory::new(d, Arc::clone(&options)).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Self { factories })
    }

    /// The node types found.
    pub fn factories(&self) -> impl Iterator<Item = &Arc<PythonFactory>> {
        self.factories.iter()
    }

    /// Adds every node type to `registry`.
    pub fn register(&self, registry: &mut NodeRegistry) {
        for f in &self.factories {
            registry.register_factory(f.clone());
        }
    }
}

/// The last `n` non-empty lines of `text`, joined with " | ".
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
