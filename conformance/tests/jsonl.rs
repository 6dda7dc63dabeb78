//! The conformance suite through the JSON Lines example transport: a `JsonlRunner` client
//! against its server on a Unix socket, in front of the in-process runner.

use std::sync::Arc;

use remotemedia_conformance::run_all;
use remotemedia_example_jsonl::client::JsonlRunner;
use remotemedia_example_jsonl::server::{ServeOptions, serve};
use remotemedia_runtime_core::PipelineRunner;
use tokio::net::UnixListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_lines_transport_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("rm.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let options = ServeOptions {
        allow_client_manifests: true,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(serve(
        listener,
        Arc::new(PipelineRunner::new()),
        options,
        async move {
            let _ = stopped.await;
        },
    ));
    run_all(&JsonlRunner::new(socket)).await;
    let _ = stop.send(());
    serving.await.unwrap();
}
