//! The transport conformance suite against the in-process runner and against a worker reached
//! over the pod link: the same behaviour either way.

use std::sync::Arc;

use remotemedia_conformance::run_all;
use remotemedia_runtime_core::PipelineRunner;
use remotemedia_runtime_core::ipc::{ClientOptions, IpcRunner, LinkName, Worker, WorkerOptions};
use remotemedia_runtime_core::manifest::{Format, Manifest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_runner_conforms() {
    run_all(&PipelineRunner::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_link_conforms() {
    let link = LinkName::new(&format!(
        "t-conf-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ))
    .unwrap();
    let served: Arc<Manifest> = Manifest::from_text(
        r#"{"version":"v1","nodes":[{"id":"p","node_type":"PassThrough"}]}"#,
        Format::Json,
        PipelineRunner::new().registry(),
    )
    .unwrap();
    let worker = Worker::bind(
        link.clone(),
        PipelineRunner::new(),
        served,
        WorkerOptions::default(),
    )
    .expect("worker");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(worker.serve(async {
        let _ = stopped.await;
    }));
    let client = IpcRunner::connect(link, ClientOptions::default()).expect("client");
    run_all(&client).await;
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}
