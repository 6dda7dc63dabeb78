//! # remotemedia-conformance
//!
//! One behaviour suite for every transport: whatever implements [`PipelineTransport`] must
//! pass [`run_all`]. A crate of its own, not part of runtime-core's API, as iceoryx2 keeps its
//! conformance tests; its `tests/` run it against every transport there is: the in-process
//! runner and the pod link (`pod_link.rs`), gRPC in front of either (`grpc.rs`), and the JSON
//! Lines example transport (`jsonl.rs`). A new transport adds a test file here.
//!
//! The suite checks the session contract of [`remotemedia_runtime_core::transport`] from the
//! outside: order,
//! sequence numbers and metadata kept, every data kind unchanged, node errors as items that
//! name the node, buffered output flushed at the end of input, nothing lost when the reader is
//! slower than the writer, sessions independent of each other, and `close` never hanging.
//! Every step has a time limit, so a transport that loses a message fails with the step's name
//! instead of hanging the test run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use remotemedia_runtime_core::data::{DType, TensorData};
use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::transport::{PipelineTransport, SessionOutput, StreamSession};
use remotemedia_runtime_core::{AudioBuffer, RuntimeData, TransportData};

/// Far beyond what any step needs; only a lost message reaches it.
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// Runs every check against `transport`, panicking with the check's name on the first
/// failure.
pub async fn run_all(transport: &dyn PipelineTransport) {
    order_sequence_metadata_and_every_data_kind(transport).await;
    node_errors_are_items_and_the_session_goes_on(transport).await;
    buffered_output_is_flushed_at_end_of_input(transport).await;
    a_slow_reader_loses_nothing(transport).await;
    sessions_are_independent(transport).await;
    unary_matches_streaming(transport).await;
    close_ends_the_session_without_hanging(transport).await;
    close_wakes_a_waiting_receive(transport).await;
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("conformance: {what} did not finish within {STEP_LIMIT:?}"))
}

/// A one-node pipeline whose node is `n`.
fn single(node_type: &str, params: &serde_json::Value) -> Arc<Manifest> {
    let text = json!({
        "version": "v1",
        "metadata": {"name": "conformance"},
        "nodes": [{"id": "n", "node_type": node_type, "params": params}],
        "connections": [],
    });
    Manifest::from_text(
        &text.to_string(),
        Format::Json,
        &NodeRegistry::with_builtins(),
    )
    .expect("the suite's manifests are valid")
}

async fn open(transport: &dyn PipelineTransport, m: &Arc<Manifest>) -> Box<dyn StreamSession> {
    within("opening a session", transport.stream(m.clone()))
        .await
        .expect("conformance: the session opens")
}

/// Every output until the end of the session.
async fn drain(session: &dyn StreamSession, what: &str) -> Vec<SessionOutput> {
    let mut outputs = Vec::new();
    while let Some(output) = within(what, session.recv_output())
        .await
        .unwrap_or_else(|e| panic!("conformance: {what}: {e}"))
    {
        outputs.push(output);
    }
    outputs
}

fn every_kind() -> Vec<RuntimeData> {
    vec![
        RuntimeData::Audio(
            AudioBuffer::new(vec![0.5, -0.25, f32::MIN_POSITIVE, -0.0], 48_000, 2)
                .with_stream_id("mic")
                .with_timestamp_us(20_000),
        ),
        RuntimeData::Text("héllo ✓".into()),
        RuntimeData::Json(json!("a bare JSON string")),
        RuntimeData::Json(json!({"nested": [1, 2.5, null, {"k": u64::MAX}]})),
        RuntimeData::Binary(vec![0, 1, 254, 255].into()),
        RuntimeData::Tensor(TensorData {
            bytes: vec![1, 0, 2, 0, 3, 0].into(),
            shape: vec![3],
            dtype: DType::I16,
        }),
    ]
}

async fn order_sequence_metadata_and_every_data_kind(transport: &dyn PipelineTransport) {
    let session = open(transport, &single("PassThrough", &json!({}))).await;
    let inputs: Vec<TransportData> = every_kind()
        .into_iter()
        .cycle()
        .take(60)
        .enumerate()
        .map(|(i, data)| {
            TransportData::new(data)
                .with_sequence(1_000 + i as u64)
                .with_metadata("index", i.to_string())
        })
        .collect();
    let sending = async {
        for input in &inputs {
            session.send_input(input.clone()).await.expect("send");
        }
        session.end_input().await;
    };
    let (outputs, ()) = tokio::join!(drain(session.as_ref(), "PassThrough outputs"), sending);
    assert_eq!(
        outputs.len(),
        inputs.len(),
        "conformance: one output per input"
    );
    for (output, input) in outputs.iter().zip(&inputs) {
        match output {
            SessionOutput::Data { node_id, data } => {
                assert_eq!(node_id, "n", "conformance: outputs name their node");
                assert_eq!(
                    data, input,
                    "conformance: data, sequence and metadata unchanged"
                );
            }
            SessionOutput::Error(e) => panic!("conformance: unexpected error item {e:?}"),
        }
    }
}

async fn node_errors_are_items_and_the_session_goes_on(transport: &dyn PipelineTransport) {
    let session = open(transport, &single("CalculatorNode", &json!({}))).await;
    let requests = [
        json!({"operation": "add", "operands": [1, 2]}),
        json!({"operation": "cube", "operands": [3, 4]}),
        json!({"operation": "multiply", "operands": [3, 4]}),
    ];
    for (i, request) in requests.into_iter().enumerate() {
        let input = TransportData::new(RuntimeData::Json(request)).with_sequence(i as u64);
        within("send", session.send_input(input))
            .await
            .expect("send");
    }
    session.end_input().await;
    let outputs = drain(session.as_ref(), "calculator outputs").await;
    assert_eq!(outputs.len(), 3, "conformance: {outputs:?}");
    match &outputs[1] {
        SessionOutput::Error(failure) => {
            assert_eq!(failure.node_id, "n");
            assert_eq!(failure.sequence, Some(1));
            assert!(failure.message.contains("cube"), "{}", failure.message);
        }
        other @ SessionOutput::Data { .. } => {
            panic!("conformance: expected an error item, got {other:?}")
        }
    }
    let result = |o: &SessionOutput| match o {
        SessionOutput::Data { data, .. } => match &data.data {
            RuntimeData::Json(v) => v["result"].as_f64(),
            _ => None,
        },
        SessionOutput::Error(_) => None,
    };
    assert_eq!(
        (result(&outputs[0]), result(&outputs[2])),
        (Some(3.0), Some(12.0))
    );
}

async fn buffered_output_is_flushed_at_end_of_input(transport: &dyn PipelineTransport) {
    let session = open(
        transport,
        &single("AudioChunkerNode", &json!({"chunk_size": 480})),
    )
    .await;
    for _ in 0..3 {
        let frame = AudioBuffer::new(vec![0.1; 300], 16_000, 1);
        within(
            "send",
            session.send_input(TransportData::new(RuntimeData::Audio(frame))),
        )
        .await
        .expect("send");
    }
    session.end_input().await;
    let sizes: Vec<usize> = drain(session.as_ref(), "chunker outputs")
        .await
        .into_iter()
        .map(|o| match o {
            SessionOutput::Data { data, .. } => match data.data {
                RuntimeData::Audio(a) => a.samples.len(),
                other => panic!("conformance: audio expected, got {other:?}"),
            },
            SessionOutput::Error(e) => panic!("conformance: {e:?}"),
        })
        .collect();
    assert_eq!(
        sizes,
        [480, 420],
        "conformance: a full chunk, then the flushed rest"
    );
}

async fn a_slow_reader_loses_nothing(transport: &dyn PipelineTransport) {
    let session = open(transport, &single("PassThrough", &json!({}))).await;
    const ITEMS: u64 = 400;
    let sending = async {
        for i in 0..ITEMS {
            let frame = AudioBuffer::new(vec![i as f32; 960], 48_000, 1);
            let input = TransportData::new(RuntimeData::Audio(frame)).with_sequence(i);
            session.send_input(input).await.expect("send");
        }
        session.end_input().await;
    };
    let reading = async {
        let mut seen = Vec::new();
        while let Some(output) = session.recv_output().await.expect("receive") {
            seen.push(output.sequence().expect("sequence kept"));
            // Slower than the writer: the writer must wait, not drop.
            tokio::task::yield_now().await;
        }
        seen
    };
    let (seen, ()) = within("400 frames through a slow reader", async {
        tokio::join!(reading, sending)
    })
    .await;
    assert_eq!(
        seen,
        (0..ITEMS).collect::<Vec<_>>(),
        "conformance: all frames, in order"
    );
}

async fn sessions_are_independent(transport: &dyn PipelineTransport) {
    let m = single("PassThrough", &json!({}));
    let mut sessions = Vec::new();
    for _ in 0..8 {
        sessions.push(open(transport, &m).await);
    }
    let runs = sessions.iter().enumerate().map(|(s, session)| async move {
        for i in 0..25u64 {
            let input = TransportData::new(RuntimeData::Text(format!("{s}:{i}")));
            session.send_input(input).await.expect("send");
        }
        session.end_input().await;
        let texts: Vec<String> = drain(session.as_ref(), "a session's outputs")
            .await
            .into_iter()
            .map(|o| match o {
                SessionOutput::Data { data, .. } => match data.data {
                    RuntimeData::Text(t) => t,
                    other => panic!("conformance: text expected, got {other:?}"),
                },
                SessionOutput::Error(e) => panic!("conformance: {e:?}"),
            })
            .collect();
        let expected: Vec<String> = (0..25).map(|i| format!("{s}:{i}")).collect();
        assert_eq!(
            texts, expected,
            "conformance: session {s} got only its own items"
        );
    });
    within("8 concurrent sessions", futures::future::join_all(runs)).await;
}

async fn unary_matches_streaming(transport: &dyn PipelineTransport) {
    let m = single("CalculatorNode", &json!({}));
    let input = TransportData::new(RuntimeData::Json(
        json!({"operation": "divide", "operands": [1, 4]}),
    ))
    .with_sequence(9);
    let unary = within("a unary call", transport.execute(m.clone(), input.clone()))
        .await
        .expect("the unary call works");
    let session = open(transport, &m).await;
    session.send_input(input).await.expect("send");
    session.end_input().await;
    let streamed = drain(session.as_ref(), "the streamed call").await;
    assert_eq!(
        unary, streamed,
        "conformance: unary and streaming give the same outputs"
    );
}

async fn close_ends_the_session_without_hanging(transport: &dyn PipelineTransport) {
    let session = open(transport, &single("PassThrough", &json!({}))).await;
    session
        .send_input(TransportData::new(RuntimeData::Text("x".into())))
        .await
        .expect("send");
    within("close", session.close()).await;
    within("close again", session.close()).await;
    assert!(
        !session.is_active(),
        "conformance: a closed session is inactive"
    );
    let after = within(
        "send after close",
        session.send_input(TransportData::new(RuntimeData::Text("y".into()))),
    )
    .await;
    assert!(after.is_err(), "conformance: input after close is refused");
    let next = within("receive after close", session.recv_output()).await;
    assert!(
        matches!(next, Ok(None) | Err(_)),
        "conformance: nothing more after close, got {next:?}"
    );
}

/// A transport's session task typically receives in one task while another (the client
/// leaving) closes: the waiting receive must end, not wait for outputs that never come.
async fn close_wakes_a_waiting_receive(transport: &dyn PipelineTransport) {
    let session = open(transport, &single("PassThrough", &json!({}))).await;
    let session: &dyn StreamSession = session.as_ref();
    let receive = async {
        within(
            "a receive waiting when the session is closed",
            session.recv_output(),
        )
        .await
    };
    let close = async {
        // Let the receive start waiting first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        session.close().await;
    };
    let (received, ()) = tokio::join!(receive, close);
    assert!(
        matches!(received, Ok(None) | Err(_)),
        "conformance: a receive waiting at close ends with nothing, got {received:?}"
    );
}
