//! `serve`: run a worker that serves one pipeline on a pod link until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use remotemedia_runtime_core::PipelineRunner;
use remotemedia_runtime_core::ipc::{LinkName, Worker, WorkerOptions};
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_server::{LinkFlags, Probes, bind, gauge};

pub(crate) fn serve(
    manifest_path: &Path,
    name: &str,
    metrics_listen: Option<SocketAddr>,
    link_flags: LinkFlags,
    registry: NodeRegistry,
) -> anyhow::Result<ExitCode> {
    let Some(manifest) = crate::run::load_manifest(manifest_path, &registry)? else {
        return Ok(ExitCode::FAILURE);
    };
    let link = LinkName::new(name)?;
    let runner = PipelineRunner::with_registry(registry);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Listening from the start: SIGTERM must stop the worker cleanly, never kill it.
        let stop = remotemedia_runtime_core::shutdown::requested();
        let pipeline = manifest.name().to_owned();
        let worker = Worker::bind(
            link.clone(),
            runner.clone(),
            Arc::new(manifest),
            WorkerOptions {
                spin: link_flags.spin(),
                ..WorkerOptions::default()
            },
        )?;
        if let Some(addr) = metrics_listen {
            let listener = bind(addr, "--metrics-listen").await?;
            eprintln!("metrics on http://{}/metrics", listener.local_addr()?);
            // Ready from the moment it is bound to its link, which is now.
            let handle = worker.handle();
            let probes = Probes::new(Arc::new(runner)).metrics(move || {
                gauge(
                    remotemedia_runtime_core::pod::SESSIONS_GAUGE,
                    "Sessions open on the pod link.",
                    &[("link", handle.link().as_str())],
                    handle.open_sessions() as f64,
                )
            });
            tokio::spawn(probes.serve(listener));
        }
        // Tests and operators wait for this line.
        eprintln!(
            "serving pipeline '{pipeline}' on link '{link}' (pid {})",
            std::process::id()
        );
        worker.serve(stop).await?;
        eprintln!("worker on link '{link}' stopped");
        Ok(ExitCode::SUCCESS)
    })
}
