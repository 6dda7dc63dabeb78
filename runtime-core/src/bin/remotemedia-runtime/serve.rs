//! `serve`: run a worker that serves one pipeline on a pod link until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use remotemedia_runtime_core::PipelineRunner;
use remotemedia_runtime_core::ipc::{LinkName, Worker, WorkerHandle, WorkerOptions};
use remotemedia_runtime_core::nodes::NodeRegistry;

use crate::http::{self, Probe};

pub(crate) fn serve(
    manifest_path: &Path,
    name: &str,
    metrics_listen: Option<SocketAddr>,
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
        let pipeline = manifest.name().to_owned();
        let worker = Worker::bind(
            link.clone(),
            runner.clone(),
            Arc::new(manifest),
            WorkerOptions::default(),
        )?;
        if let Some(addr) = metrics_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding --metrics-listen {addr}"))?;
            let bound = listener.local_addr()?;
            eprintln!("metrics on http://{bound}/metrics");
            let probe = Arc::new(WorkerProbe {
                runner,
                worker: worker.handle(),
            });
            tokio::spawn(http::serve(listener, probe));
        }
        // Tests and operators wait for this line.
        eprintln!(
            "serving pipeline '{pipeline}' on link '{link}' (pid {})",
            std::process::id()
        );
        worker
            .serve(remotemedia_runtime_core::shutdown::requested())
            .await?;
        eprintln!("worker on link '{link}' stopped");
        Ok(ExitCode::SUCCESS)
    })
}

struct WorkerProbe {
    runner: PipelineRunner,
    worker: WorkerHandle,
}

impl Probe for WorkerProbe {
    fn metrics(&self) -> String {
        let mut text = self.runner.metrics().render();
        text.push_str(&format!(
            "# HELP remotemedia_ipc_sessions_open Sessions open on the pod link.\n\
             # TYPE remotemedia_ipc_sessions_open gauge\n\
             remotemedia_ipc_sessions_open{{link=\"{}\"}} {}\n",
            self.worker.link(),
            self.worker.open_sessions()
        ));
        text
    }

    fn ready(&self) -> Result<(), String> {
        // The probe exists only once the worker is bound to its link.
        Ok(())
    }
}
