//! The transport conformance suite through gRPC: a `GrpcRunner` client against the service
//! over real HTTP/2, in front of an in-process pipeline and in front of a pod-link worker.

use std::sync::Arc;

use remotemedia_conformance::run_all;
use remotemedia_grpc::{GrpcRunner, GrpcService, PipelineTransport, ServiceOptions};
use remotemedia_runtime_core::PipelineRunner;
use remotemedia_runtime_core::ipc::{ClientOptions, IpcRunner, LinkName, Worker, WorkerOptions};
use remotemedia_runtime_core::manifest::{Format, Manifest};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;

fn served() -> Arc<Manifest> {
    Manifest::from_text(
        r#"{"version":"v1","nodes":[{"id":"p","node_type":"PassThrough"}]}"#,
        Format::Json,
        PipelineRunner::new().registry(),
    )
    .unwrap()
}

/// Serves `backend` on loopback (client manifests allowed: the suite sends its own) and
/// returns a runner connected to it.
async fn grpc_runner(backend: Arc<dyn PipelineTransport>) -> GrpcRunner {
    let options = ServiceOptions {
        allow_client_manifests: true,
        ..ServiceOptions::default()
    };
    let service = GrpcService::new(backend, options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_server(4 << 20))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    GrpcRunner::new(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_in_front_of_an_in_process_pipeline_conforms() {
    let backend = Arc::new(PipelineRunner::new().serving(served()).expect("plans"));
    run_all(&grpc_runner(backend).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_in_front_of_a_pod_link_worker_conforms() {
    let link = LinkName::new(&format!(
        "t-gconf-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ))
    .unwrap();
    let worker = Worker::bind(
        link.clone(),
        PipelineRunner::new(),
        served(),
        WorkerOptions::default(),
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(worker.serve(async {
        let _ = stopped.await;
    }));
    let client = IpcRunner::connect(link, ClientOptions::default()).unwrap();
    let backend = Arc::new(client);
    run_all(&grpc_runner(backend).await).await;
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}
