//! Session router behaviour through the public API: fan-out, fan-in, backpressure, error items,
//! unary drain and deadline, close, panics.

#![allow(clippy::needless_pass_by_value)] // test helpers take owned JSON for readable call sites

use std::sync::Arc;
use std::time::Duration;

use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::nodes::{Io, Node, NodeError, NodeKind, NodeRegistry, Outputs};
use remotemedia_runtime_core::{
    AudioBuffer, PipelineRunner, RunError, RunnerConfig, RuntimeData, SessionError, SessionOutput,
    StreamSession, TransportData,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// Test node: sleeps (blocking) for `ms` per item, then forwards it.
struct Slow(u64);
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SlowParams {
    ms: u64,
}
impl NodeKind for Slow {
    const NODE_TYPE: &'static str = "Slow";
    const DESCRIPTION: &'static str = "test";
    const IO: Io = Io {
        accepts: &[],
        produces: &[],
    };
    type Params = SlowParams;
    fn new(p: SlowParams) -> Self {
        Self(p.ms)
    }
}
impl Node for Slow {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        std::thread::sleep(Duration::from_millis(self.0));
        out.push(input);
        Ok(())
    }
}

/// Test node: panics on the text "boom", forwards anything else.
struct Fragile;
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoParams {}
impl NodeKind for Fragile {
    const NODE_TYPE: &'static str = "Fragile";
    const DESCRIPTION: &'static str = "test";
    const IO: Io = Io {
        accepts: &[],
        produces: &[],
    };
    type Params = NoParams;
    fn new(_: NoParams) -> Self {
        Self
    }
}
impl Node for Fragile {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        assert!(input != RuntimeData::text("boom"), "boom");
        out.push(input);
        Ok(())
    }
}

fn runner(config: RunnerConfig) -> PipelineRunner {
    let mut registry = NodeRegistry::with_builtins();
    registry.register::<Slow>();
    registry.register::<Fragile>();
    PipelineRunner::with_registry(registry).with_config(config)
}

fn manifest(
    runner: &PipelineRunner,
    nodes: serde_json::Value,
    connections: serde_json::Value,
) -> Arc<Manifest> {
    let doc = json!({"version": "v1", "metadata": {"name": "test"}, "nodes": nodes, "connections": connections});
    Manifest::from_text(&doc.to_string(), Format::Json, runner.registry()).unwrap()
}

/// A pipeline of a single node without params.
fn one_node(runner: &PipelineRunner, id: &str, node_type: &str) -> Arc<Manifest> {
    manifest(
        runner,
        json!([{"id": id, "node_type": node_type}]),
        json!([]),
    )
}

async fn collect(session: &impl StreamSession) -> Vec<SessionOutput> {
    let mut all = Vec::new();
    while let Some(o) = session.recv_output().await.unwrap() {
        all.push(o);
    }
    all
}

fn text_of(o: &SessionOutput) -> (&str, &str) {
    match o {
        SessionOutput::Data { node_id, data } => match &data.data {
            RuntimeData::Text(t) => (node_id.as_str(), t.as_str()),
            other => panic!("{other:?}"),
        },
        SessionOutput::Error(e) => panic!("unexpected error item {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_delivers_to_every_sink_tagged_with_node_ids() {
    let r = runner(RunnerConfig::default());
    let m = manifest(
        &r,
        json!([{"id": "in", "node_type": "PassThrough"}, {"id": "left", "node_type": "PassThrough"},
               {"id": "right", "node_type": "PassThrough"}]),
        json!([{"from": "in", "to": "left"}, {"from": "in", "to": "right"}]),
    );
    let s = r.create_stream_session(&m).unwrap();
    for i in 0..20 {
        s.send_input(
            TransportData::new(RuntimeData::text(format!("t{i}"))).with_metadata("k", "v"),
        )
        .await
        .unwrap();
    }
    s.end_input().await;
    let out = collect(&s).await;
    assert_eq!(out.len(), 40);
    for sink in ["left", "right"] {
        let texts: Vec<&str> = out
            .iter()
            .map(text_of)
            .filter(|(n, _)| *n == sink)
            .map(|(_, t)| t)
            .collect();
        let expected: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        assert_eq!(
            texts, expected,
            "sink {sink} got items out of order or lost"
        );
    }
    // Sequence numbers and metadata of the input survive the trip.
    let SessionOutput::Data { data, .. } = &out[0] else {
        panic!()
    };
    assert_eq!(data.metadata.get("k").map(String::as_str), Some("v"));
    assert!(out.iter().all(|o| o.sequence().is_some()));
    assert!(!s.is_active());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_merges_both_branches_and_intermediate_output_nodes_report() {
    let r = runner(RunnerConfig::default());
    let m = manifest(
        &r,
        json!([{"id": "a", "node_type": "PassThrough", "is_output_node": true}, {"id": "b", "node_type": "PassThrough"},
               {"id": "join", "node_type": "PassThrough"}]),
        json!([{"from": "a", "to": "join"}, {"from": "b", "to": "join"}]),
    );
    let out = r
        .execute_unary(
            m,
            TransportData::new(RuntimeData::text("x")).with_sequence(7),
        )
        .await
        .unwrap();
    let mut nodes: Vec<&str> = out.iter().map(SessionOutput::node_id).collect();
    nodes.sort_unstable();
    // Input goes to both sources; the join receives both copies; `a` also reports directly.
    assert_eq!(nodes, ["a", "join", "join"]);
    assert!(out.iter().all(|o| o.sequence() == Some(7)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_blocks_the_sender_and_loses_nothing() {
    let capacity = 2;
    let r = runner(
        RunnerConfig::default()
            .node_queue_capacity(capacity)
            .output_queue_capacity(capacity),
    );
    let m = manifest(
        &r,
        json!([{"id": "a", "node_type": "PassThrough"}, {"id": "b", "node_type": "PassThrough"}]),
        json!([{"from": "a", "to": "b"}]),
    );
    let s = Arc::new(r.create_stream_session(&m).unwrap());
    let total = 100;
    let sender = {
        let s = Arc::clone(&s);
        tokio::spawn(async move {
            for i in 0..total {
                s.send_input(TransportData::new(RuntimeData::text(i.to_string())))
                    .await
                    .unwrap();
            }
            s.end_input().await;
        })
    };
    // Nobody reads: the sender must stall once the queues and the items held by node tasks
    // are full. Wait until it has been stuck for a while, not for a fixed time.
    let stalled = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            tokio::task::yield_now().await;
            if sender.is_finished() {
                break;
            }
        }
    })
    .await;
    assert!(
        stalled.is_err(),
        "sender finished {total} items with no reader: queues are not bounded"
    );
    assert!(!sender.is_finished());

    let out = collect(&*s).await;
    sender.await.unwrap();
    let got: Vec<String> = out.iter().map(|o| text_of(o).1.to_owned()).collect();
    let expected: Vec<String> = (0..total).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_error_is_an_item_naming_the_node_and_the_session_goes_on() {
    let r = runner(RunnerConfig::default());
    let m = manifest(
        &r,
        json!([{"id": "calc", "node_type": "CalculatorNode"}, {"id": "out", "node_type": "PassThrough"}]),
        json!([{"from": "calc", "to": "out"}]),
    );
    let s = r.create_stream_session(&m).unwrap();
    let requests = [
        json!({"operation": "add", "operands": [1, 2]}),
        json!({"operation": "divide", "operands": [1, 0]}),
        json!({"operation": "multiply", "operands": [3, 4]}),
    ];
    for (i, req) in requests.into_iter().enumerate() {
        s.send_input(TransportData::new(RuntimeData::Json(req)).with_sequence(i as u64 * 10))
            .await
            .unwrap();
    }
    s.end_input().await;
    let out = collect(&s).await;
    assert_eq!(out.len(), 3);
    // Order is guaranteed per node, not across nodes: the error comes straight from `calc`
    // while results pass through `out`.
    let errors: Vec<_> = out
        .iter()
        .filter_map(|o| {
            if let SessionOutput::Error(f) = o {
                Some(f)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(errors.len(), 1, "{out:?}");
    let failure = errors[0];
    assert_eq!(failure.node_id, "calc");
    assert_eq!(failure.sequence, Some(10));
    assert!(
        failure.message.contains("division by zero"),
        "{}",
        failure.message
    );
    let results: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            SessionOutput::Data { node_id, data } => {
                Some((node_id.as_str(), data.sequence, data.data.clone()))
            }
            SessionOutput::Error(_) => None,
        })
        .collect();
    assert_eq!(results[0].0, "out");
    assert_eq!(results[0].1, Some(0));
    assert_eq!(
        results[1],
        (
            "out",
            Some(20),
            RuntimeData::Json(
                json!({"result": 12.0, "operation": "multiply", "operands": [3.0, 4.0]})
            )
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_drains_buffering_nodes_instead_of_hanging() {
    let r = runner(RunnerConfig::default().unary_deadline(Duration::from_secs(10)));
    // A chunker holding less than one chunk: upstream's unary call waited forever here.
    let m = manifest(
        &r,
        json!([{"id": "chunk", "node_type": "AudioChunkerNode", "params": {"chunk_size": 4800}}]),
        json!([]),
    );
    let audio = AudioBuffer::new(vec![0.1; 960], 48_000, 1);
    let out = r
        .execute_unary(m, TransportData::new(RuntimeData::Audio(audio)))
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    let SessionOutput::Data { data, .. } = &out[0] else {
        panic!()
    };
    let RuntimeData::Audio(a) = &data.data else {
        panic!()
    };
    assert_eq!(a.frames(), 960);

    // A pipeline that yields nothing returns an empty list, promptly.
    let m = one_node(&r, "calc", "CalculatorNode");
    let out = r
        .execute_unary(m, TransportData::new(RuntimeData::text("not json")))
        .await
        .unwrap();
    assert!(matches!(&out[..], [SessionOutput::Error(e)] if e.node_id == "calc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_deadline_names_the_unfinished_node() {
    let r = runner(RunnerConfig::default().unary_deadline(Duration::from_millis(100)));
    let m = manifest(
        &r,
        json!([{"id": "fast", "node_type": "PassThrough"}, {"id": "stuck", "node_type": "Slow", "params": {"ms": 2000}}]),
        json!([{"from": "fast", "to": "stuck"}]),
    );
    let err = r
        .execute_unary(m, TransportData::new(RuntimeData::text("x")))
        .await
        .unwrap_err();
    let RunError::DeadlineExceeded {
        unfinished_nodes, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(unfinished_nodes, &["stuck"]);
    assert!(
        err.to_string().contains("did not finish within 100ms"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_is_idempotent_and_ends_the_session() {
    let r = runner(RunnerConfig::default());
    let m = one_node(&r, "p", "PassThrough");
    let s = r.create_stream_session(&m).unwrap();
    s.send_input(TransportData::new(RuntimeData::text("a")))
        .await
        .unwrap();
    s.close().await;
    s.close().await;
    assert!(!s.is_active());
    assert_eq!(s.recv_output().await.unwrap(), None);
    let err = s
        .send_input(TransportData::new(RuntimeData::text("b")))
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::InputEnded { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_rejected_at_the_door() {
    let r = runner(RunnerConfig::default());
    let m = one_node(&r, "p", "PassThrough");
    let s = r.create_stream_session(&m).unwrap();
    let bad = AudioBuffer::new(vec![0.0; 3], 16_000, 2);
    let err = s
        .send_input(TransportData::new(RuntimeData::Audio(bad)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SessionError::InvalidInput(ref m) if m.contains("whole number")),
        "{err}"
    );
    // The session is unaffected.
    s.send_input(TransportData::new(RuntimeData::text("ok")))
        .await
        .unwrap();
    s.end_input().await;
    assert_eq!(collect(&s).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_node_reports_errors_and_the_rest_of_the_graph_continues() {
    let r = runner(RunnerConfig::default());
    let m = manifest(
        &r,
        json!([{"id": "fragile", "node_type": "Fragile"}, {"id": "steady", "node_type": "PassThrough"}]),
        json!([]),
    );
    let s = r.create_stream_session(&m).unwrap();
    for t in ["a", "boom", "c"] {
        s.send_input(TransportData::new(RuntimeData::text(t)))
            .await
            .unwrap();
    }
    s.end_input().await;
    let out = collect(&s).await;
    let fragile: Vec<_> = out.iter().filter(|o| o.node_id() == "fragile").collect();
    let steady = out.iter().filter(|o| o.node_id() == "steady").count();
    assert_eq!(steady, 3);
    assert!(matches!(fragile[0], SessionOutput::Data { .. }));
    assert!(matches!(fragile[1], SessionOutput::Error(e) if e.message.contains("panicked: boom")));
    assert!(matches!(fragile[2], SessionOutput::Error(e) if e.message.contains("out of service")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_manifest_is_refused_at_session_creation() {
    let r = runner(RunnerConfig::default());
    let mut m = (*one_node(&r, "p", "PassThrough")).clone();
    m.nodes[0].node_type = "Nope".into();
    let err = r.create_stream_session(&m).unwrap_err();
    assert!(
        matches!(err, RunError::InvalidManifest(ref rep) if rep.to_string().contains("unknown node type 'Nope'")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_items_per_node_and_session() {
    let r = runner(RunnerConfig::default());
    let m = one_node(&r, "calc", "CalculatorNode");
    let s = r.create_stream_session(&m).unwrap();
    s.send_input(TransportData::new(RuntimeData::Json(
        json!({"operation": "add", "operands": [1, 1]}),
    )))
    .await
    .unwrap();
    s.send_input(TransportData::new(RuntimeData::text("bad")))
        .await
        .unwrap();
    s.end_input().await;
    collect(&s).await;
    let text = r.metrics().render();
    assert!(text.contains(r#"remotemedia_node_items_total{node="calc",node_type="CalculatorNode",pipeline="test"} 2"#), "{text}");
    assert!(text.contains(
        r#"remotemedia_node_errors_total{node="calc",node_type="CalculatorNode",pipeline="test"} 1"#
    ));
    let session = format!(
        r#"remotemedia_session_inputs_total{{pipeline="test",session="{}"}} 2"#,
        s.session_id()
    );
    assert!(text.contains(&session), "{text}");
    drop(s);
    assert!(
        r.metrics()
            .render()
            .contains(r#"remotemedia_sessions_active{pipeline="test"} 0"#)
    );
}
