//! A `serve` worker process reached over the pod link: the same results as in-process, many
//! sessions from several processes at once, error items, refusals and backpressure.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use remotemedia_runtime_core::ipc::{ClientOptions, IpcRunner, LinkName};
use remotemedia_runtime_core::manifest::{Format, Manifest, ProblemKind};
use remotemedia_runtime_core::{
    PipelineRunner, PipelineTransport, RunError, RuntimeData, SessionOutput, StreamSession,
    TransportData,
};
use serde_json::json;
use support::{ServedWorker, example, runtime_bin, unique_link, within, write_wav};

/// Far beyond what any session here needs; only a lost message would reach it.
const LIMIT: Duration = Duration::from_secs(60);

fn run_cli(args: &[&str]) -> Output {
    support::run_cli_with(args, &[])
}

/// Stdout lines as a set: branches of a DAG interleave their outputs in any order.
fn line_set(out: &Output) -> BTreeSet<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn client(link: &str) -> IpcRunner {
    IpcRunner::connect(LinkName::new(link).unwrap(), ClientOptions::default()).expect("client")
}

/// A worker process serving a single PassThrough node, its manifest written into `dir`.
fn pass_through_worker(dir: &std::path::Path, link_prefix: &str) -> ServedWorker {
    let path = dir.join("pass.json");
    std::fs::write(
        &path,
        r#"{"version": "v1", "nodes": [{"id": "pass", "node_type": "PassThrough"}]}"#,
    )
    .unwrap();
    ServedWorker::start(&path, &unique_link(link_prefix))
}

fn manifest(text: &str) -> Arc<Manifest> {
    Manifest::from_text(text, Format::Json, PipelineRunner::new().registry()).expect("manifest")
}

#[test]
fn connected_runs_give_the_same_output_as_in_process_runs() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wav");
    write_wav(&input);
    let resample = example("resample-chain.yaml");
    let worker = ServedWorker::start(&resample, &unique_link("same"));
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let input = input.to_str().unwrap();

    // The worker's own pipeline: audio out, byte for byte.
    run_cli(&[
        "run",
        resample.to_str().unwrap(),
        "--input",
        input,
        "--output",
        &path("local.wav"),
    ]);
    run_cli(&[
        "run",
        "--connect",
        &worker.link,
        "--input",
        input,
        "--output",
        &path("ipc.wav"),
    ]);
    let (local, ipc) = (
        std::fs::read(path("local.wav")).unwrap(),
        std::fs::read(path("ipc.wav")).unwrap(),
    );
    assert!(local.len() > 100_000, "the pipeline wrote audio");
    assert!(
        local == ipc,
        "audio through the worker differs from in-process audio"
    );

    // A client-sent manifest with JSON events from two branches.
    let health = example("audio-health.yaml");
    let local = run_cli(&["run", health.to_str().unwrap(), "--input", input]);
    let ipc = run_cli(&[
        "run",
        "--connect",
        &worker.link,
        health.to_str().unwrap(),
        "--input",
        input,
    ]);
    assert!(line_set(&local).len() > 50);
    assert_eq!(line_set(&local), line_set(&ipc));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_from_several_processes_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wav");
    write_wav(&input);
    let calculator = example("calculator.json");
    let worker = ServedWorker::start(&calculator, &unique_link("many"));

    // Two other processes stream audio through the worker while this one runs 8 sessions.
    let resample = example("resample-chain.yaml");
    let others: Vec<_> = (0..2)
        .map(|i| {
            Command::new(runtime_bin())
                .args(["run", "--connect", &worker.link])
                .arg(&resample)
                .arg("--input")
                .arg(&input)
                .arg("--output")
                .arg(dir.path().join(format!("out{i}.wav")))
                .env("RUST_LOG", "error")
                .output()
        })
        .collect();
    let runner = client(&worker.link);
    let mut tasks = Vec::new();
    for s in 0..8u64 {
        let runner = runner.clone();
        tasks.push(tokio::spawn(async move {
            let session = runner.stream_served().await.expect("open");
            let feed = async {
                for i in 0..50u64 {
                    let request = json!({"operation": "multiply", "operands": [s, i]});
                    let item = TransportData::new(RuntimeData::Json(request)).with_sequence(i);
                    session.send_input(item).await.expect("send");
                }
                session.end_input().await;
            };
            let collect = async {
                let mut results = Vec::new();
                while let Some(out) = session.recv_output().await.expect("recv") {
                    let SessionOutput::Data { node_id, data } = out else {
                        panic!("unexpected {out:?}")
                    };
                    assert_eq!(node_id, "calc");
                    let RuntimeData::Json(v) = data.data else {
                        panic!()
                    };
                    results.push((data.sequence.unwrap(), v["result"].as_f64().unwrap()));
                }
                results
            };
            let ((), results) =
                within(LIMIT, "a session", async { tokio::join!(feed, collect) }).await;
            let expected: Vec<_> = (0..50u64).map(|i| (i, (s * i) as f64)).collect();
            assert_eq!(results, expected, "session {s}");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for (i, out) in others.into_iter().enumerate() {
        let out = out.expect("spawn");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let written = std::fs::metadata(dir.path().join(format!("out{i}.wav"))).unwrap();
        assert!(written.len() > 100_000, "client {i} got its audio");
    }
    worker.await_open_sessions(0, Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_error_items_and_refusals_match_the_in_process_runner() {
    let calculator = example("calculator.json");
    let worker = ServedWorker::start(&calculator, &unique_link("unary"));
    let runner = client(&worker.link);
    let local = PipelineRunner::new();
    let m = manifest(&std::fs::read_to_string(&calculator).unwrap());

    for request in [
        json!({"operation": "add", "operands": [2, 3]}),
        json!({"operation": "modulo", "operands": [2, 3]}),
    ] {
        let input = TransportData::new(RuntimeData::Json(request)).with_sequence(7);
        let remote = runner
            .execute(m.clone(), input.clone())
            .await
            .expect("execute");
        let here = local.execute(m.clone(), input).await.expect("execute");
        assert_eq!(remote, here);
    }
    let input = TransportData::new(RuntimeData::Json(json!({"operation": "modulo"})));
    let outputs = runner
        .execute(m.clone(), input.with_sequence(3))
        .await
        .unwrap();
    match &outputs[..] {
        [SessionOutput::Error(f)] => {
            assert_eq!((f.node_id.as_str(), f.sequence), ("calc", Some(3)));
        }
        other => panic!("expected one error item, got {other:?}"),
    }

    // A manifest the worker's registry rejects comes back as the same structured error.
    let bad: Manifest = serde_json::from_value(json!({
        "version": "v1", "nodes": [{"id": "x", "node_type": "NoSuchNode"}]
    }))
    .unwrap();
    match runner.stream(Arc::new(bad)).await {
        Err(RunError::InvalidManifest(report)) => {
            let p = &report.problems[0];
            assert_eq!(
                (p.kind, p.node_id.as_deref()),
                (ProblemKind::UnknownNodeType, Some("x"))
            );
        }
        Err(other) => panic!("expected InvalidManifest, got {other}"),
        Ok(_) => panic!("expected InvalidManifest, got a session"),
    }

    // Malformed input fails the call, as in-process, and the session goes on.
    let session = runner.stream_served().await.unwrap();
    let bad_audio = remotemedia_runtime_core::AudioBuffer::new(vec![0.0; 3], 48_000, 2);
    let err = session
        .send_input(TransportData::new(RuntimeData::Audio(bad_audio)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid input"), "{err}");
    assert!(session.is_active());

    let nobody = client(&unique_link("nobody"));
    match nobody.stream_served().await {
        Err(RunError::Unavailable { reason }) => {
            assert!(reason.contains("no live worker"), "{reason}");
        }
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("a session without a worker"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_stalls_its_sender_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let worker = pass_through_worker(dir.path(), "bp");
    let session = client(&worker.link).stream_served().await.unwrap();
    const ITEMS: u64 = 2_000;
    let mut sent = 0;
    // Nobody reads outputs: every queue and both pipes fill, then sending waits.
    while sent < ITEMS {
        let item = TransportData::new(RuntimeData::Text(format!("item {sent}")));
        match tokio::time::timeout(Duration::from_secs(1), session.send_input(item)).await {
            Ok(result) => result.expect("send"),
            Err(_) => break,
        }
        sent += 1;
    }
    assert!(
        sent < ITEMS,
        "all {ITEMS} items were accepted without a reader"
    );
    // The blocked item was dropped with its future; send the rest while reading everything.
    let feed = async {
        for i in sent..ITEMS {
            let item = TransportData::new(RuntimeData::Text(format!("item {i}")));
            session.send_input(item).await.expect("send");
        }
        session.end_input().await;
    };
    let collect = async {
        let mut texts = Vec::new();
        while let Some(SessionOutput::Data { data, .. }) = session.recv_output().await.unwrap() {
            let RuntimeData::Text(t) = data.data else {
                panic!()
            };
            texts.push(t);
        }
        texts
    };
    let ((), texts) = within(LIMIT, "draining the stalled session", async {
        tokio::join!(feed, collect)
    })
    .await;
    let expected: Vec<String> = (0..ITEMS).map(|i| format!("item {i}")).collect();
    assert_eq!(texts.len(), expected.len(), "stalled after {sent} items");
    assert_eq!(texts, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_session_does_not_hold_up_other_sessions_on_the_same_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let worker = pass_through_worker(dir.path(), "hol");
    // One client process: both sessions share its pipe pair to the worker.
    let runner = client(&worker.link);
    let stalled = runner.stream_served().await.unwrap();
    let frame = || {
        TransportData::new(RuntimeData::Audio(
            remotemedia_runtime_core::AudioBuffer::new(vec![0.25; 960], 48_000, 1),
        ))
    };
    let mut parked = 0;
    while tokio::time::timeout(Duration::from_secs(1), stalled.send_input(frame()))
        .await
        .is_ok()
    {
        parked += 1;
        assert!(parked < 10_000, "a session nobody reads never stalled");
    }
    // The stalled session's outputs sit unread; another session still streams at once.
    let moving = runner.stream_served().await.unwrap();
    within(
        Duration::from_secs(10),
        "streaming beside a stalled session",
        async {
            for i in 0..500u64 {
                moving.send_input(frame().with_sequence(i)).await.unwrap();
                let Some(SessionOutput::Data { data, .. }) = moving.recv_output().await.unwrap()
                else {
                    panic!("no output for frame {i}")
                };
                assert_eq!(data.sequence, Some(i));
            }
        },
    )
    .await;
    // And the stalled one loses nothing once read.
    stalled.end_input().await;
    let mut received = 0;
    within(LIMIT, "draining the stalled session", async {
        while let Some(output) = stalled.recv_output().await.unwrap() {
            assert!(matches!(output, SessionOutput::Data { .. }));
            received += 1;
        }
    })
    .await;
    assert_eq!(received, parked, "frames sent before the stall");
}
