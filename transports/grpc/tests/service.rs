//! The pipeline service over a real HTTP/2 connection on loopback, driven by the generated
//! tonic client: unary and streaming calls, refusals with their status codes, limits, and a
//! thousand clients that vanish mid-stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use remotemedia_grpc::convert::{item_to_wire, output_from_wire, result_from_wire};
use remotemedia_grpc::pb::pipeline_service_client::PipelineServiceClient;
use remotemedia_grpc::pb::{self, stream_request, stream_response};
use remotemedia_grpc::{Admission, GrpcService, PipelineTransport, ServiceOptions};
use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::{
    OpenedSession, PipelineRunner, RunError, RuntimeData, SessionError, SessionOutput,
    TransportData,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::Channel;
use tonic::{Code, Streaming};

const LIMIT: Duration = Duration::from_secs(30);

fn manifest(text: &str) -> Arc<Manifest> {
    Manifest::from_text(text, Format::Json, PipelineRunner::new().registry()).expect("manifest")
}

fn passthrough() -> Arc<Manifest> {
    manifest(
        r#"{"version":"v1","metadata":{"name":"pass"},"nodes":[{"id":"pass","node_type":"PassThrough"}],"connections":[]}"#,
    )
}

struct Served {
    client: PipelineServiceClient<Channel>,
    channel: Channel,
    open: Admission,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(served: Arc<Manifest>, options: ServiceOptions) -> Served {
    let runner = PipelineRunner::new().serving(served).expect("plans");
    serve_transport(Arc::new(runner), options).await
}

async fn serve_transport(transport: Arc<dyn PipelineTransport>, options: ServiceOptions) -> Served {
    let service = GrpcService::new(transport, options);
    let open = service.open_sessions();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_server(4 << 20))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Served {
        client: PipelineServiceClient::new(channel.clone()),
        channel,
        open,
        stop: Some(stop),
    }
}

fn request(kind: stream_request::Kind) -> pb::StreamRequest {
    pb::StreamRequest { kind: Some(kind) }
}

fn open(manifest: &str) -> pb::StreamRequest {
    request(stream_request::Kind::Open(pb::Open {
        manifest: manifest.to_owned(),
    }))
}

fn input(data: &RuntimeData, sequence: u64) -> pb::StreamRequest {
    let item = TransportData::new(data.clone())
        .with_sequence(sequence)
        .with_metadata("speaker", "ada");
    request(stream_request::Kind::Input(item_to_wire(&item)))
}

/// Opens a stream whose requests are fed through the returned sender.
async fn stream(
    client: &mut PipelineServiceClient<Channel>,
    first: pb::StreamRequest,
) -> (
    mpsc::Sender<pb::StreamRequest>,
    Result<Streaming<pb::StreamResponse>, tonic::Status>,
) {
    let (tx, rx) = mpsc::channel(16);
    tx.send(first).await.unwrap();
    let response = client
        .stream(ReceiverStream::new(rx))
        .await
        .map(tonic::Response::into_inner);
    (tx, response)
}

async fn next(responses: &mut Streaming<pb::StreamResponse>) -> stream_response::Kind {
    tokio::time::timeout(LIMIT, responses.message())
        .await
        .expect("a response in time")
        .expect("no error status")
        .expect("a response, not the end")
        .kind
        .expect("a response kind")
}

/// The error status a stream ends with (responses before it are skipped).
async fn ending_status<T>(responses: &mut Streaming<T>) -> tonic::Status {
    loop {
        match tokio::time::timeout(LIMIT, responses.message())
            .await
            .unwrap()
        {
            Err(status) => return status,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended without an error status"),
        }
    }
}

async fn await_zero(open: &Admission) {
    let deadline = Instant::now() + LIMIT;
    while open.open() != 0 {
        assert!(
            Instant::now() < deadline,
            "{} sessions still open",
            open.open()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_give_what_the_in_process_runner_gives() {
    let calculator = manifest(include_str!("../../../examples/pipelines/calculator.json"));
    let mut served = serve(calculator.clone(), ServiceOptions::default()).await;
    for request in [
        json!({"operation": "multiply", "operands": [6, 7]}),
        json!({"operation": "pow", "operands": [2, 8]}),
    ] {
        let data = RuntimeData::Json(request);
        let item = TransportData::new(data.clone()).with_sequence(5);
        let expected = PipelineRunner::new()
            .execute_unary(calculator.clone(), item.clone())
            .await
            .unwrap();
        let response = served
            .client
            .execute(pb::ExecuteRequest {
                input: Some(item_to_wire(&item)),
                manifest: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let got: Vec<SessionOutput> = response
            .outputs
            .into_iter()
            .map(|o| output_from_wire(o).unwrap())
            .collect();
        assert_eq!(got, expected);
    }
    await_zero(&served.open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_answers_ready_results_and_closed() {
    let mut served = serve(passthrough(), ServiceOptions::default()).await;
    let (tx, responses) = stream(&mut served.client, open("")).await;
    let mut responses = responses.unwrap();
    let stream_response::Kind::Ready(ready) = next(&mut responses).await else {
        panic!("ready first")
    };
    assert!(!ready.session_id.is_empty());
    assert!(
        ready.manifest_json.contains("\"pass\""),
        "{}",
        ready.manifest_json
    );

    let items = [
        RuntimeData::Text("héllo".into()),
        RuntimeData::Json(json!("a JSON string")),
        RuntimeData::Binary(vec![0, 255].into()),
    ];
    for (i, data) in items.iter().enumerate() {
        tx.send(input(data, i as u64)).await.unwrap();
    }
    tx.send(request(stream_request::Kind::EndInput(pb::EndInput {})))
        .await
        .unwrap();
    for (i, data) in items.iter().enumerate() {
        let stream_response::Kind::Result(result) = next(&mut responses).await else {
            panic!("a result")
        };
        let SessionOutput::Data { node_id, data: got } = result_from_wire(result).unwrap() else {
            panic!("data")
        };
        assert_eq!(node_id, "pass");
        assert_eq!(got.sequence, Some(i as u64));
        assert_eq!(got.metadata.get("speaker").map(String::as_str), Some("ada"));
        assert_eq!(&got.data, data);
    }
    match next(&mut responses).await {
        stream_response::Kind::Closed(closed) => {
            assert_eq!(closed.reason, "completed");
            assert_eq!(closed.ending(), pb::closed::Ending::Completed);
        }
        other => panic!("expected closed, got {other:?}"),
    }
    assert!(
        responses.message().await.unwrap().is_none(),
        "the stream ends after closed"
    );
    await_zero(&served.open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_out_of_order_get_the_right_status() {
    let mut served = serve(passthrough(), ServiceOptions::default()).await;
    let text = RuntimeData::Text("x".into());

    let (_tx, response) = stream(&mut served.client, input(&text, 0)).await;
    let status = response.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("must be `open`"), "{status:?}");

    // A second `open`, and a data item that is not valid data, end the stream with a status.
    for (bad, code, says) in [
        (
            open(""),
            Code::FailedPrecondition,
            "`open` may only be the first",
        ),
        (
            request(stream_request::Kind::Input(pb::Item {
                data: Some(pb::Data {
                    kind: Some(pb::data::Kind::Audio(pb::Audio {
                        samples_f32le: vec![0; 7],
                        sample_rate: 48_000,
                        channels: 1,
                        stream_id: None,
                        timestamp_us: None,
                    })),
                }),
                sequence: None,
                metadata: Default::default(),
            })),
            Code::InvalidArgument,
            "input.data.audio.samples_f32le: 7 bytes",
        ),
    ] {
        let (tx, responses) = stream(&mut served.client, open("")).await;
        let mut responses = responses.unwrap();
        assert!(matches!(
            next(&mut responses).await,
            stream_response::Kind::Ready(_)
        ));
        tx.send(bad).await.unwrap();
        let status = ending_status(&mut responses).await;
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(says), "{status:?}");
    }
    await_zero(&served.open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_manifests_are_refused_unless_allowed_and_checked_when_allowed() {
    let mut strict = serve(passthrough(), ServiceOptions::default()).await;
    let calculator = include_str!("../../../examples/pipelines/calculator.json");
    let (_tx, response) = stream(&mut strict.client, open(calculator)).await;
    assert_eq!(response.unwrap_err().code(), Code::PermissionDenied);

    let options = ServiceOptions {
        allow_client_manifests: true,
        ..ServiceOptions::default()
    };
    let mut open_server = serve(passthrough(), options).await;
    let bad = r#"{"version":"v1","nodes":[{"id":"r","node_type":"FastResampleNode","params":{"target_rate":0}}]}"#;
    let (_tx, response) = stream(&mut open_server.client, open(bad)).await;
    let status = response.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("nodes[0].params"), "{status:?}");

    let (_tx, response) = stream(&mut open_server.client, open(calculator)).await;
    let mut responses = response.unwrap();
    let stream_response::Kind::Ready(ready) = next(&mut responses).await else {
        panic!("ready")
    };
    assert!(ready.manifest_json.contains("CalculatorNode"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_the_limit_are_refused_and_idle_ones_closed() {
    let options = ServiceOptions {
        max_sessions: 1,
        idle_timeout: Duration::from_secs(2),
        ..ServiceOptions::default()
    };
    let mut served = serve(passthrough(), options).await;
    let (_first_tx, first) = stream(&mut served.client, open("")).await;
    let mut first = first.unwrap();
    assert!(matches!(
        next(&mut first).await,
        stream_response::Kind::Ready(_)
    ));
    let (_tx, second) = stream(&mut served.client, open("")).await;
    assert_eq!(second.unwrap_err().code(), Code::ResourceExhausted);

    // The first client says nothing: its session is closed, with the reason.
    match next(&mut first).await {
        stream_response::Kind::Closed(closed) => {
            assert!(
                closed.reason.contains("no message from the client"),
                "{closed:?}"
            );
            assert_eq!(closed.ending(), pb::closed::Ending::Aborted);
        }
        other => panic!("expected closed, got {other:?}"),
    }
    await_zero(&served.open).await;
    let (_tx, third) = stream(&mut served.client, open("")).await;
    assert!(third.is_ok(), "a place is free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_vanishing_mid_stream_leave_no_session_behind() {
    let served = serve(passthrough(), ServiceOptions::default()).await;
    let audio = RuntimeData::Audio(remotemedia_runtime_core::AudioBuffer::new(
        vec![0.25; 960],
        48_000,
        1,
    ));
    let mut tasks = Vec::new();
    for worker in 0..20 {
        let mut client = served.client.clone();
        let audio = audio.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let (tx, responses) = stream(&mut client, open("")).await;
                let mut responses = responses.unwrap();
                next(&mut responses).await;
                tx.send(input(&audio, i)).await.unwrap();
                if (worker + i) % 2 == 0 {
                    next(&mut responses).await;
                }
                // Gone without end_input or half-close: both directions dropped.
                drop(tx);
                drop(responses);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    await_zero(&served.open).await;
    // The server still works.
    let (_tx, responses) = stream(&mut served.client.clone(), open("")).await;
    let mut responses = responses.unwrap();
    assert!(matches!(
        next(&mut responses).await,
        stream_response::Kind::Ready(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_types_and_version_are_listed() {
    let mut served = serve(passthrough(), ServiceOptions::default()).await;
    let types = served
        .client
        .list_node_types(pb::ListNodeTypesRequest {})
        .await
        .unwrap()
        .into_inner()
        .node_types;
    let resample = types
        .iter()
        .find(|t| t.node_type == "FastResampleNode")
        .expect("FastResampleNode is listed");
    assert_eq!(
        (resample.accepts.as_slice(), resample.produces.as_slice()),
        (&["audio".to_owned()][..], &["audio".to_owned()][..])
    );
    let schema: serde_json::Value = serde_json::from_str(&resample.params_schema_json).unwrap();
    assert!(schema["properties"]["target_rate"].is_object(), "{schema}");
    let version = served
        .client
        .get_version(pb::GetVersionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.protocol, "remotemedia.v1");
    assert_eq!(version.server, env!("CARGO_PKG_VERSION"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused_with_their_size() {
    let mut served = serve(passthrough(), ServiceOptions::default()).await;
    let big = RuntimeData::Binary(vec![7u8; 5 << 20].into());
    let status = served
        .client
        .execute(pb::ExecuteRequest {
            input: Some(item_to_wire(&TransportData::new(big.clone()))),
            manifest: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");

    // Mid-stream: the stream ends with the same status, and the session is gone.
    let (tx, responses) = stream(&mut served.client, open("")).await;
    let mut responses = responses.unwrap();
    assert!(matches!(
        next(&mut responses).await,
        stream_response::Kind::Ready(_)
    ));
    tx.send(input(&big, 0)).await.unwrap();
    let status = ending_status(&mut responses).await;
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::Cancelled),
        "{status:?}"
    );
    await_zero(&served.open).await;
}

/// Sends its bytes as they are, so a test can put what is not protobuf on the wire.
#[derive(Clone, Copy, Default)]
struct RawBytes;

impl tonic::codec::Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Self;
    type Decoder = Self;
    fn encoder(&mut self) -> Self {
        Self
    }
    fn decoder(&mut self) -> Self {
        Self
    }
}

impl tonic::codec::Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        buf: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// Bytes that are not a protobuf message: field 1 with wire type 7, which does not exist.
const NOT_PROTOBUF: [u8; 3] = [0x0f, 0xff, 0xff];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_are_not_protobuf_are_refused_and_the_server_goes_on() {
    use tonic::codegen::http::uri::PathAndQuery;
    let served = serve(passthrough(), ServiceOptions::default()).await;
    let mut raw = tonic::client::Grpc::new(served.channel.clone());

    // gRPC's status code table maps "error parsing request proto" to INTERNAL (tonic-prost
    // follows it); the message says what failed to decode.
    raw.ready().await.unwrap();
    let status = raw
        .unary(
            tonic::Request::new(NOT_PROTOBUF.to_vec()),
            PathAndQuery::from_static("/remotemedia.v1.PipelineService/Execute"),
            RawBytes,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(status.message().contains("decode"), "{status:?}");

    // Mid-stream: a good open, then garbage: the stream ends with the same status and the
    // session is gone.
    let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
    tx.send(prost::Message::encode_to_vec(&open("")))
        .await
        .unwrap();
    raw.ready().await.unwrap();
    let mut responses = raw
        .streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            PathAndQuery::from_static("/remotemedia.v1.PipelineService/Stream"),
            RawBytes,
        )
        .await
        .unwrap()
        .into_inner();
    let ready: pb::StreamResponse =
        prost::Message::decode(&responses.message().await.unwrap().expect("ready")[..]).unwrap();
    assert!(matches!(ready.kind, Some(stream_response::Kind::Ready(_))));
    tx.send(NOT_PROTOBUF.to_vec()).await.unwrap();
    let status = ending_status(&mut responses).await;
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    await_zero(&served.open).await;

    // The server is unharmed: a proper call on the same connection works.
    let answer = served
        .client
        .clone()
        .execute(pb::ExecuteRequest {
            input: Some(item_to_wire(&TransportData::new(RuntimeData::Text(
                "ok".into(),
            )))),
            manifest: String::new(),
        })
        .await
        .expect("a good call after the bad ones");
    assert_eq!(answer.into_inner().outputs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_never_sends_open_ends_with_deadline_exceeded() {
    let options = ServiceOptions {
        open_timeout: Duration::from_secs(1),
        ..ServiceOptions::default()
    };
    let mut served = serve(passthrough(), options).await;
    let (tx, rx) = mpsc::channel::<pb::StreamRequest>(1);
    let started = Instant::now();
    let refused = tokio::time::timeout(LIMIT, served.client.stream(ReceiverStream::new(rx)))
        .await
        .expect("the server gave up on the silent stream")
        .expect_err("a stream without `open` is refused");
    assert_eq!(refused.code(), Code::DeadlineExceeded, "{refused:?}");
    assert!(
        refused.message().contains("no `open` message within 1s"),
        "{refused:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    drop(tx);
    assert_eq!(served.open.open(), 0);
}

/// Audio of one second, large enough that a few dozen fill every buffer between the session
/// and a client that does not read.
fn one_second() -> RuntimeData {
    RuntimeData::Audio(remotemedia_runtime_core::AudioBuffer::new(
        vec![0.25; 48_000],
        48_000,
        1,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_session_after_the_stall_deadline() {
    let options = ServiceOptions {
        stall_timeout: Duration::from_secs(1),
        ..ServiceOptions::default()
    };
    let mut served = serve(passthrough(), options).await;
    let (tx, responses) = stream(&mut served.client, open("")).await;
    let mut responses = responses.unwrap();
    assert!(matches!(
        next(&mut responses).await,
        stream_response::Kind::Ready(_)
    ));
    // Inputs go on, responses are never read: the buffers fill, then the session waits.
    let feeding = tokio::spawn(async move {
        for sequence in 0..10_000 {
            if tx.send(input(&one_second(), sequence)).await.is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + LIMIT;
    while served.open.open() != 0 {
        assert!(Instant::now() < deadline, "the session stayed open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Whatever was queued is skipped: the stream ends with the reason.
    let status = ending_status(&mut responses).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status
            .message()
            .contains("the client read no response for 1s"),
        "{status:?}"
    );
    feeding.abort();
}

/// A transport whose sessions never take an input: a pipeline stuck on something.
struct Stuck;

struct StuckSession {
    closed: tokio::sync::watch::Sender<bool>,
}

impl StuckSession {
    async fn until_closed(&self) {
        let mut closed = self.closed.subscribe();
        let _ = closed.wait_for(|closed| *closed).await;
    }
}

#[tonic::async_trait]
impl remotemedia_runtime_core::StreamSession for StuckSession {
    fn session_id(&self) -> &str {
        "stuck"
    }
    async fn send_input(&self, _input: TransportData) -> Result<(), SessionError> {
        self.until_closed().await;
        Err(SessionError::Closed {
            session_id: "stuck".to_owned(),
        })
    }
    async fn end_input(&self) {}
    async fn recv_output(&self) -> Result<Option<SessionOutput>, SessionError> {
        self.until_closed().await;
        Ok(None)
    }
    async fn close(&self) {
        self.closed.send_replace(true);
    }
    fn is_active(&self) -> bool {
        !*self.closed.borrow()
    }
}

#[tonic::async_trait]
impl PipelineTransport for Stuck {
    async fn open(&self, _manifest: Option<Arc<Manifest>>) -> Result<OpenedSession, RunError> {
        Ok(OpenedSession {
            session: Box::new(StuckSession {
                closed: tokio::sync::watch::Sender::new(false),
            }),
            manifest: passthrough(),
        })
    }
    async fn node_types(&self) -> Result<Arc<NodeRegistry>, RunError> {
        Ok(Arc::new(NodeRegistry::with_builtins()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_the_pipeline_never_takes_ends_the_session_saying_why() {
    let options = ServiceOptions {
        stall_timeout: Duration::from_secs(1),
        ..ServiceOptions::default()
    };
    let mut served = serve_transport(Arc::new(Stuck), options).await;
    let (tx, responses) = stream(&mut served.client, open("")).await;
    let mut responses = responses.unwrap();
    assert!(matches!(
        next(&mut responses).await,
        stream_response::Kind::Ready(_)
    ));
    tx.send(input(&one_second(), 0)).await.unwrap();
    match next(&mut responses).await {
        stream_response::Kind::Closed(closed) => {
            assert_eq!(closed.ending(), pb::closed::Ending::Aborted);
            assert!(
                closed.reason.contains("the pipeline took no input for 1s"),
                "{closed:?}"
            );
        }
        other => panic!("expected closed, got {other:?}"),
    }
    await_zero(&served.open).await;
}
