//! The `remotemedia-grpc` binary as a process: health, tokens, metrics, drain on SIGTERM, the
//! `--connect` sidecar mode in front of a worker, and grpcurl as a real third-party client.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use remotemedia_grpc::convert::item_to_wire;
use remotemedia_grpc::pb::pipeline_service_client::PipelineServiceClient;
use remotemedia_grpc::pb::{self, stream_request, stream_response};
use remotemedia_grpc::{GrpcRunner, PipelineTransport};
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::python::{PythonNodes, PythonOptions};
use remotemedia_runtime_core::{AudioBuffer, PipelineRunner, RuntimeData, TransportData};
use serde_json::json;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

mod support;

use support::{LIMIT, LinkedWorker, Server, example, grpcurl, http_get, open_stream, test_python};

const TOKEN: &str = "s3cret-token";

async fn health(channel: Channel, service: &str) -> ServingStatus {
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health answers without a token")
        .into_inner()
        .status;
    ServingStatus::try_from(status).unwrap()
}

async fn await_health(channel: Channel, want: ServingStatus) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let got = health(channel.clone(), "remotemedia.v1.PipelineService").await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health stayed {got:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn with_token<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    request
}

fn calc_request() -> pb::ExecuteRequest {
    let data = RuntimeData::Json(json!({"operation": "add", "operands": [2, 3]}));
    pb::ExecuteRequest {
        input: Some(item_to_wire(&TransportData::new(data))),
        manifest: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_open_calls_need_the_token_and_metrics_count_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("# test\n{TOKEN}\n")).unwrap();
    let server = Server::start(&[
        "--manifest",
        example("calculator.json").to_str().unwrap(),
        "--token-file",
        tokens.to_str().unwrap(),
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let channel = server.channel().await;
    await_health(channel.clone(), ServingStatus::Serving).await;
    assert_eq!(health(channel.clone(), "").await, ServingStatus::Serving);

    let mut client = PipelineServiceClient::new(channel);
    let refused = client.execute(calc_request()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let mut wrong = tonic::Request::new(calc_request());
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(
        client.execute(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let outputs = client
        .execute(with_token(calc_request()))
        .await
        .unwrap()
        .into_inner()
        .outputs;
    assert_eq!(outputs.len(), 1, "{outputs:?}");

    let metrics = http_get(server.metrics.expect("metrics address"), "/metrics");
    assert!(
        metrics.contains("remotemedia_grpc_open_sessions 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("calculator"),
        "runtime metrics of the pipeline: {metrics}"
    );
}

/// A server holding `--max-sessions` is NOT_SERVING for readiness (the Service sends new
/// sessions elsewhere) while alive and serving the open ones; a session ending makes it
/// SERVING again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_is_not_ready_and_its_sessions_go_on() {
    let server = Server::start(&[
        "--manifest",
        example("calculator.json").to_str().unwrap(),
        "--max-sessions",
        "1",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let channel = server.channel().await;
    await_health(channel.clone(), ServingStatus::Serving).await;
    let client = PipelineServiceClient::new(channel.clone());
    let (tx, mut responses) = open_stream(client.clone(), "").await;
    await_health(channel.clone(), ServingStatus::NotServing).await;
    assert_eq!(
        health(channel.clone(), "liveness").await,
        ServingStatus::Serving
    );
    let readyz = http_get(server.metrics.expect("metrics address"), "/readyz");
    assert!(readyz.starts_with("HTTP/1.1 503"), "{readyz}");
    assert!(readyz.ends_with("full: 1 of 1 sessions open\n"), "{readyz}");
    // The open session is served.
    let data = RuntimeData::Json(json!({"operation": "add", "operands": [1, 2]}));
    tx.send(pb::StreamRequest {
        kind: Some(stream_request::Kind::Input(item_to_wire(
            &TransportData::new(data),
        ))),
    })
    .await
    .unwrap();
    assert!(matches!(
        responses.message().await.unwrap().unwrap().kind,
        Some(stream_response::Kind::Result(_))
    ));
    drop(tx);
    while responses.message().await.ok().flatten().is_some() {}
    await_health(channel, ServingStatus::Serving).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_refuses_new_sessions_and_lets_open_ones_finish() {
    let mut server = Server::start(&[
        "--manifest",
        example("calculator.json").to_str().unwrap(),
        "--drain-seconds",
        "20",
    ]);
    let channel = server.channel().await;
    await_health(channel.clone(), ServingStatus::Serving).await;
    let mut client = PipelineServiceClient::new(channel.clone());
    let (tx, mut responses) = open_stream(client.clone(), "").await;

    server.terminate();
    await_health(channel.clone(), ServingStatus::NotServing).await;
    assert_eq!(
        health(channel.clone(), "liveness").await,
        ServingStatus::Serving,
        "liveness probes must not fail while draining"
    );
    let refused = client.execute(calc_request()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    // The open session still works to its end.
    let data = RuntimeData::Json(json!({"operation": "multiply", "operands": [4, 5]}));
    tx.send(pb::StreamRequest {
        kind: Some(stream_request::Kind::Input(item_to_wire(
            &TransportData::new(data),
        ))),
    })
    .await
    .unwrap();
    drop(tx);
    let mut kinds = Vec::new();
    while let Some(message) = tokio::time::timeout(LIMIT, responses.message())
        .await
        .unwrap()
        .unwrap()
    {
        kinds.push(message.kind.unwrap());
    }
    assert!(
        matches!(kinds.first(), Some(stream_response::Kind::Result(_))),
        "{kinds:?}"
    );
    assert!(
        matches!(kinds.last(), Some(stream_response::Kind::Closed(c)) if c.reason == "completed"),
        "{kinds:?}"
    );
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

/// A terminating pod's endpoint takes a moment to leave kube-proxy: with no session open, the
/// server still keeps its port for `--linger-seconds`, and a client arriving then (on a new
/// connection, as one routed there would) is refused with UNAVAILABLE, which gRPC clients
/// retry elsewhere; it does not get a session on the server going away, nor a closed port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_the_port_lingers_refusing_new_sessions_retryably() {
    const LINGER: Duration = Duration::from_secs(6);
    let mut server = Server::start(&[
        "--manifest",
        example("calculator.json").to_str().unwrap(),
        "--linger-seconds",
        &LINGER.as_secs().to_string(),
    ]);
    await_health(server.channel().await, ServingStatus::Serving).await;
    let signalled = Instant::now();
    server.terminate();
    await_health(server.channel().await, ServingStatus::NotServing).await;
    let mut refusals = 0;
    while signalled.elapsed() < LINGER - Duration::from_secs(1) {
        let mut client = PipelineServiceClient::new(server.channel().await);
        let refused = client.execute(calc_request()).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
        refusals += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        refusals > 0,
        "the linger ended before a client could be refused"
    );
    let status = server.wait_exit(LIMIT);
    assert!(status.success(), "{status:?}");
    assert!(
        signalled.elapsed() >= LINGER,
        "exited {:?} after SIGTERM, before the linger",
        signalled.elapsed()
    );
}

/// SIGTERM the moment the server says it serves: its signal handlers are in place before that
/// line, so it drains and exits 0 every time, and is never killed by the signal's default
/// action (which happened on a loaded machine while the handler was installed only once the
/// server was running).
#[test]
fn sigterm_right_after_the_serving_line_drains_and_exits_cleanly() {
    for _ in 0..5 {
        let mut server =
            Server::start(&["--manifest", example("calculator.json").to_str().unwrap()]);
        server.terminate();
        let status = server.wait_exit(LIMIT);
        assert!(status.success(), "{status:?}");
    }
}

/// The node id of the first output of a unary call, which must be a result.
async fn first_result_node(
    client: &mut PipelineServiceClient<Channel>,
    request: pb::ExecuteRequest,
) -> String {
    let outputs = client.execute(request).await.unwrap().into_inner().outputs;
    let Some(pb::output::Kind::Result(result)) = &outputs[0].kind else {
        panic!("{outputs:?}")
    };
    result.node_id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_sidecar_it_serves_the_workers_pipeline_and_tracks_its_health() {
    let worker = LinkedWorker::start(PipelineRunner::new());
    let link = worker.link.clone();

    // The flags the operator's pod template passes to the gRPC sidecar (ARCHITECTURE.md,
    // operator/src/desired/pod.rs), so a rename here breaks this test, not a pod.
    let server = Server::start(&[
        "--connect",
        &link,
        "--metrics-listen",
        "127.0.0.1:0",
        "--max-sessions",
        "10",
        "--drain-seconds",
        "5",
    ]);
    let channel = server.channel().await;
    await_health(channel.clone(), ServingStatus::Serving).await;
    let mut client = PipelineServiceClient::new(channel.clone());
    assert_eq!(first_result_node(&mut client, calc_request()).await, "calc");

    worker.stop().await;
    await_health(channel.clone(), ServingStatus::NotServing).await;
    assert_eq!(
        health(channel, "liveness").await,
        ServingStatus::Serving,
        "a sidecar whose worker is away is not ready, but alive"
    );
}

/// A `--connect` sidecar lists and checks the node types the worker behind it runs (its
/// node catalog, sent over the pod link), not its own built-ins: with a worker that has the
/// example package's `python:Gain`, `ListNodeTypes` lists it, a client manifest with a bad
/// Gain param is refused naming the node and the field path, and a good one runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_sidecar_it_lists_and_checks_the_node_types_the_worker_runs() {
    let mut registry = NodeRegistry::with_builtins();
    PythonNodes::discover(PythonOptions {
        interpreter: test_python().into(),
        ..PythonOptions::default()
    })
    .expect("the example Python node types are installed in the test interpreter")
    .register(&mut registry);
    let worker = LinkedWorker::start(PipelineRunner::with_registry(registry));
    let link = worker.link.clone();
    let server = Server::start(&["--connect", &link, "--allow-client-manifests"]);
    let channel = server.channel().await;
    await_health(channel.clone(), ServingStatus::Serving).await;
    let mut client = PipelineServiceClient::new(channel);

    let listed = client
        .list_node_types(pb::ListNodeTypesRequest {})
        .await
        .unwrap()
        .into_inner()
        .node_types;
    let gain = listed
        .iter()
        .find(|t| t.node_type == "python:Gain")
        .unwrap_or_else(|| panic!("python:Gain is not listed: {listed:?}"));
    assert!(gain.params_schema_json.contains("gain_db"), "{gain:?}");
    assert!(listed.iter().any(|t| t.node_type == "CalculatorNode"));

    let audio = RuntimeData::Audio(AudioBuffer::new(vec![0.25f32; 960], 48_000, 1));
    let request = |gain_db: serde_json::Value| pb::ExecuteRequest {
        input: Some(item_to_wire(&TransportData::new(audio.clone()))),
        manifest: json!({
            "version": "v1",
            "nodes": [{"id": "louder", "node_type": "python:Gain", "params": {"gain_db": gain_db}}],
        })
        .to_string(),
    };
    let refused = client.execute(request(json!("loud"))).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("nodes[0].params.gain_db")
            && refused.message().contains("louder"),
        "{refused:?}"
    );

    assert_eq!(
        first_result_node(&mut client, request(json!(6.0))).await,
        "louder"
    );

    // A Rust client gets the same node types as a registry it can check manifests with: the
    // catalog travels worker -> sidecar -> client with params and defaults.
    let remote = GrpcRunner::new(server.channel().await)
        .node_types()
        .await
        .expect("the server's catalog");
    let bad = json!({
        "version": "v1",
        "nodes": [{"id": "louder", "node_type": "python:Gain", "params": {"gain_db": "loud"}}],
    });
    let report = remotemedia_runtime_core::manifest::check_value(&bad, &remote).report;
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.path == "nodes[0].params.gain_db" && p.node_id.as_deref() == Some("louder")),
        "{report}"
    );
    worker.stop().await;
}

#[test]
fn grpcurl_lists_checks_health_and_calls_through_reflection() {
    let grpcurl = grpcurl();
    let server = Server::start(&["--manifest", example("calculator.json").to_str().unwrap()]);
    let addr = server.addr.to_string();
    let run = |args: &[&str]| {
        let out = Command::new(&grpcurl)
            .arg("-plaintext")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "grpcurl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let services = run(&[&addr, "list"]);
    for service in [
        "remotemedia.v1.PipelineService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            services.contains(service),
            "{service} missing from:\n{services}"
        );
    }
    let deadline = Instant::now() + LIMIT;
    loop {
        let health = run(&[
            "-d",
            r#"{"service":"remotemedia.v1.PipelineService"}"#,
            &addr,
            "grpc.health.v1.Health/Check",
        ]);
        if health.contains("SERVING") && !health.contains("NOT_SERVING") {
            break;
        }
        assert!(Instant::now() < deadline, "{health}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let request = r#"{"input":{"data":{"json":"{\"operation\":\"add\",\"operands\":[40,2]}"},"sequence":"7"}}"#;
    let answer = run(&[
        "-d",
        request,
        &addr,
        "remotemedia.v1.PipelineService/Execute",
    ]);
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let result = &answer["outputs"][0]["result"];
    assert_eq!(result["nodeId"], "calc", "{answer}");
    assert_eq!(result["item"]["sequence"], "7", "{answer}");
    let json: serde_json::Value =
        serde_json::from_str(result["item"]["data"]["json"].as_str().unwrap()).unwrap();
    assert_eq!(json["result"], 42.0, "{answer}");
}

#[test]
fn a_python_grpcio_client_streams_a_wav_and_gets_level_events() {
    let python = test_python();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("in.wav");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let made = Command::new(&python)
        .arg(root.join("examples/audio/make_wav.py"))
        .arg(&wav)
        .status()
        .unwrap();
    assert!(made.success());
    let frames = hound::WavReader::open(&wav).unwrap().duration() as usize;

    let server = Server::start(&["--manifest", example("audio-health.yaml").to_str().unwrap()]);
    let out = Command::new(&python)
        .arg(root.join("examples/grpc-client/python/stream_wav.py"))
        .args(["--server", &server.addr.to_string(), "--input"])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the Python client failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines[0]["ready"].is_string(), "{:?}", lines[0]);
    assert_eq!(lines.last().unwrap()["closed"], "completed");
    let levels: Vec<_> = lines.iter().filter(|l| l["node_id"] == "level").collect();
    // One level event per 4,800-frame window (100 ms), the last window flushed at the end.
    assert_eq!(levels.len(), frames.div_ceil(4_800), "{} frames", frames);
    for level in levels {
        assert!(level["data"]["rms_db"].is_number(), "{level}");
    }
}
