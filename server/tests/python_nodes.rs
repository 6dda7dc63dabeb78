//! Python nodes in real Python processes: data in and out unchanged, exceptions as error items,
//! crashes failing only their session, processes reaped; and the CLI running the example.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use remotemedia_runtime_core::data::{DType, TensorData};
use remotemedia_runtime_core::manifest::{Format, Manifest, ProblemKind};
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::python::{DiscoveryError, PythonNodes, PythonOptions};
use remotemedia_runtime_core::{
    AudioBuffer, PipelineRunner, RuntimeData, SessionError, SessionOutput, StreamSession,
    TransportData,
};
use serde_json::json;
use support::{
    ServedWorker, children_matching, example, reaped, test_python, test_python_env, unique_link,
    within, write_wav,
};

/// Far beyond what anything here needs; only a lost message would reach it.
const LIMIT: Duration = Duration::from_secs(30);

fn options() -> PythonOptions {
    PythonOptions {
        interpreter: test_python().into(),
        env: test_python_env()
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
        ..PythonOptions::default()
    }
}

fn runner() -> PipelineRunner {
    let mut registry = NodeRegistry::with_builtins();
    PythonNodes::discover(options())
        .expect("discover Python node types")
        .register(&mut registry);
    PipelineRunner::with_registry(registry)
}

/// A one-node pipeline.
fn single(runner: &PipelineRunner, node_type: &str, params: &serde_json::Value) -> Manifest {
    let text = json!({
        "version": "v1",
        "metadata": {"name": "py"},
        "nodes": [{"id": "py", "node_type": node_type, "params": params}],
        "connections": []
    });
    Arc::unwrap_or_clone(
        Manifest::from_text(&text.to_string(), Format::Json, runner.registry())
            .expect("valid manifest"),
    )
}

fn data(output: SessionOutput) -> RuntimeData {
    match output {
        SessionOutput::Data { data, .. } => data.data,
        SessionOutput::Error(e) => panic!("unexpected error item: {e:?}"),
    }
}

async fn next(session: &dyn StreamSession) -> SessionOutput {
    within(LIMIT, "an output", session.recv_output())
        .await
        .expect("session works")
        .expect("an output, not the end")
}

fn tone(frames: usize, amplitude: f32) -> AudioBuffer {
    let samples: Vec<f32> = (0..frames)
        .map(|i| amplitude * (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin())
        .collect();
    AudioBuffer::new(samples, 48_000, 1)
}

fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gain_changes_the_level_by_gain_db() {
    let runner = runner();
    let manifest = single(&runner, "python:Gain", &json!({"gain_db": -6.0}));
    let session = runner.create_stream_session(&manifest).unwrap();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let frame = tone(960, 0.5).with_timestamp_us(i * 20_000);
        before.extend_from_slice(&frame.samples);
        let input = TransportData::new(RuntimeData::Audio(frame)).with_sequence(i);
        session.send_input(input).await.unwrap();
        match next(&session).await {
            SessionOutput::Data { data, node_id } => {
                assert_eq!((node_id.as_str(), data.sequence), ("py", Some(i)));
                let RuntimeData::Audio(out) = data.data else {
                    panic!("audio in, audio out")
                };
                assert_eq!((out.sample_rate, out.channels), (48_000, 1));
                assert_eq!(out.timestamp_us, Some(i * 20_000));
                after.extend_from_slice(&out.samples);
            }
            SessionOutput::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(before.len(), after.len());
    let db = 20.0 * (rms(&after) / rms(&before)).log10();
    assert!((db + 6.0).abs() < 0.01, "level changed by {db} dB, not -6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_kind_round_trips_through_python_unchanged() {
    let runner = runner();
    let manifest = single(&runner, "python:PassThrough", &json!({}));
    let session = runner.create_stream_session(&manifest).unwrap();
    let inputs = vec![
        RuntimeData::Audio(
            AudioBuffer::new(
                vec![0.0, -1.0, 1.0, f32::MIN_POSITIVE, 0.123_456_79, -0.5],
                16_000,
                2,
            )
            .with_stream_id("mic-ü")
            .with_timestamp_us(u64::MAX),
        ),
        RuntimeData::Text("héllo\n\"wörld\" ✓".to_owned()),
        RuntimeData::Text(String::new()),
        // A bare JSON string must stay JSON, not turn into Text (the upstream bug).
        RuntimeData::Json(json!("just a string")),
        RuntimeData::Json(json!({
            "nested": {"list": [1, 2.5, -3, null, true, "x"], "empty": {}},
            "big": u64::MAX, "small": i64::MIN, "float": 0.1, "unicode": "日本"
        })),
        RuntimeData::Json(json!(null)),
        RuntimeData::Binary((0..=255u8).collect::<Vec<_>>().into()),
        RuntimeData::Binary(Vec::new().into()),
        RuntimeData::Tensor(TensorData {
            bytes: (0..24u8).collect::<Vec<_>>().into(),
            shape: vec![2, 3],
            dtype: DType::F32,
        }),
    ];
    for (i, input) in inputs.iter().enumerate() {
        let sent = TransportData::new(input.clone())
            .with_sequence(i as u64)
            .with_metadata("k", "v");
        session.send_input(sent).await.unwrap();
        let out = next(&session).await;
        assert_eq!(out.sequence(), Some(i as u64));
        assert_eq!(
            &data(out),
            input,
            "item {i} changed on its way through Python"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exception_fails_one_item_and_names_the_node() {
    let runner = runner();
    let manifest = single(&runner, "python:FailOn", &json!({"word": "boom"}));
    let session = runner.create_stream_session(&manifest).unwrap();
    for (i, text) in ["a", "boom", "b"].into_iter().enumerate() {
        let input = TransportData::new(RuntimeData::Text(text.into())).with_sequence(i as u64);
        session.send_input(input).await.unwrap();
    }
    session.end_input().await;
    assert_eq!(data(next(&session).await), RuntimeData::Text("a".into()));
    match next(&session).await {
        SessionOutput::Error(e) => {
            assert_eq!((e.node_id.as_str(), e.sequence), ("py", Some(1)));
            assert!(
                e.message.contains("ValueError: refusing 'boom'"),
                "{}",
                e.message
            );
        }
        other @ SessionOutput::Data { .. } => panic!("expected an error item, got {other:?}"),
    }
    assert_eq!(data(next(&session).await), RuntimeData::Text("b".into()));
    assert_eq!(session.recv_output().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generators_emit_many_and_finish_flushes() {
    let runner = runner();
    let manifest = single(&runner, "python:Burst", &json!({"count": 3}));
    let session = runner.create_stream_session(&manifest).unwrap();
    for i in 0..2 {
        let input = TransportData::new(RuntimeData::Text("go".into())).with_sequence(i);
        session.send_input(input).await.unwrap();
    }
    session.end_input().await;
    let mut got = Vec::new();
    while let Some(out) = within(LIMIT, "outputs", session.recv_output())
        .await
        .unwrap()
    {
        got.push(data(out));
    }
    let mut expected: Vec<_> = (1..=2)
        .flat_map(|input| (0..3).map(move |part| json!({"input": input, "part": part})))
        .map(RuntimeData::Json)
        .collect();
    expected.push(RuntimeData::Json(json!({"inputs": 2})));
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_fails_its_session_within_a_second_and_the_runner_goes_on() {
    let runner = runner();
    let manifest = single(&runner, "python:DieOn", &json!({}));
    let session = runner.create_stream_session(&manifest).unwrap();
    session
        .send_input(TransportData::new(RuntimeData::Text("fine".into())))
        .await
        .unwrap();
    assert_eq!(data(next(&session).await), RuntimeData::Text("fine".into()));

    let killed = Instant::now();
    session
        .send_input(TransportData::new(RuntimeData::Text("die".into())))
        .await
        .unwrap();
    let failure = within(LIMIT, "the session's failure", session.recv_output()).await;
    let took = killed.elapsed();
    match failure {
        Err(SessionError::Aborted { reason, .. }) => {
            assert!(reason.contains("node 'py' was lost"), "{reason}");
            assert!(reason.contains("SIGKILL"), "{reason}");
        }
        other => panic!("expected the session to fail, got {other:?}"),
    }
    assert!(took < Duration::from_secs(1), "the failure took {took:?}");
    // Later calls say the same, rather than hanging.
    assert!(matches!(
        session
            .send_input(TransportData::new(RuntimeData::Text("x".into())))
            .await,
        Err(SessionError::Aborted { .. })
    ));

    let again = runner.create_stream_session(&manifest).unwrap();
    again
        .send_input(TransportData::new(RuntimeData::Text("still here".into())))
        .await
        .unwrap();
    assert_eq!(
        data(next(&again).await),
        RuntimeData::Text("still here".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_while_idle_fails_its_session() {
    let runner = runner();
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let manifest = single(&runner, "python:FailOn", &json!({"word": marker}));
    let session = runner.create_stream_session(&manifest).unwrap();
    session
        .send_input(TransportData::new(RuntimeData::Text("warm".into())))
        .await
        .unwrap();
    next(&session).await;
    let pids = children_matching(&marker);
    assert_eq!(pids.len(), 1, "one process for the one node");

    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pids[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let failure = within(LIMIT, "the session's failure", session.recv_output()).await;
    assert!(
        matches!(&failure, Err(SessionError::Aborted { reason, .. }) if reason.contains("SIGKILL")),
        "{failure:?}"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "took {:?}",
        killed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_start_fails_its_session_with_the_reason() {
    let runner = runner();
    let manifest = single(&runner, "python:BadInit", &json!({}));
    let session = runner.create_stream_session(&manifest).unwrap();
    let failure = within(LIMIT, "the session's failure", session.recv_output()).await;
    assert!(
        matches!(&failure, Err(SessionError::Aborted { reason, .. })
            if reason.contains("RuntimeError: no model file here")),
        "{failure:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_end_and_are_reaped_with_their_sessions() {
    let runner = runner();
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let manifest = single(&runner, "python:FailOn", &json!({"word": marker}));
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let session = runner.create_stream_session(&manifest).unwrap();
        session
            .send_input(TransportData::new(RuntimeData::Text("hi".into())))
            .await
            .unwrap();
        next(&session).await;
        sessions.push(session);
    }
    // Finished normally, closed early, dropped: each process goes.
    sessions[0].end_input().await;
    assert_eq!(sessions[0].recv_output().await.unwrap(), None);
    sessions[1].close().await;
    let pids = children_matching(&marker);
    assert_eq!(pids.len(), 3);
    drop(sessions);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids.iter().all(|&pid| reaped(pid)) {
        assert!(
            Instant::now() < deadline,
            "node processes were not reaped: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn params_are_checked_against_the_schema_python_declared() {
    let runner = runner();
    let text = json!({
        "version": "v1",
        "nodes": [
            {"id": "loud", "node_type": "python:Gain", "params": {"gain_db": "loud"}},
            {"id": "typo", "node_type": "python:Gain", "params": {"gain_bd": 3}},
            {"id": "high", "node_type": "python:Gain", "params": {"gain_db": 90}},
            {"id": "burst", "node_type": "python:Burst"}
        ],
        "connections": []
    });
    let Err(report) = Manifest::from_text(&text.to_string(), Format::Json, runner.registry())
    else {
        panic!("invalid params were accepted")
    };
    let found: Vec<_> = report
        .problems
        .iter()
        .map(|p| (p.kind, p.path.as_str(), p.message.as_str()))
        .collect();
    let has = |kind, path: &str, text: &str| {
        found
            .iter()
            .any(|(k, p, m)| *k == kind && *p == path && m.contains(text))
    };
    assert!(
        has(
            ProblemKind::InvalidParam,
            "nodes[0].params.gain_db",
            "number"
        ),
        "{found:#?}"
    );
    assert!(
        has(
            ProblemKind::UnknownParam,
            "nodes[1].params.gain_bd",
            "did you mean 'gain_db'"
        ),
        "{found:#?}"
    );
    assert!(
        has(ProblemKind::InvalidParam, "nodes[2].params.gain_db", "60"),
        "{found:#?}"
    );
    assert!(
        has(
            ProblemKind::InvalidParam,
            "nodes[3].params.count",
            "missing required"
        ),
        "{found:#?}"
    );
}

#[test]
fn a_missing_interpreter_is_named_with_the_fix() {
    let options = PythonOptions {
        interpreter: "/nonexistent/python3".into(),
        ..PythonOptions::default()
    };
    let err = PythonNodes::discover(options).unwrap_err();
    assert!(
        matches!(err, DiscoveryError::NoInterpreter { .. }),
        "{err:?}"
    );
    assert!(err.is_absent());
    let message = err.to_string();
    assert!(
        message.contains("/nonexistent/python3") && message.contains("REMOTEMEDIA_PYTHON"),
        "{message}"
    );
}

/// The command line asks the interpreter once for its node types, whatever the manifest
/// says: without an interpreter (or without the package) the built-ins still work and a
/// `python:` node is an unknown type; `--python-nodes require` makes that an error naming the
/// interpreter, and `off` never asks.
#[test]
fn python_node_types_come_from_the_interpreter_not_from_the_manifest_text() {
    let cli = |args: &[&str], python: &str| {
        std::process::Command::new(support::runtime_bin())
            .args(args)
            .env("REMOTEMEDIA_PYTHON", python)
            .env("RUST_LOG", "error")
            .output()
            .expect("run remotemedia-runtime")
    };
    let gain = example("python-gain.yaml");
    let gain = gain.to_str().unwrap();
    let builtin = example("resample-chain.yaml");
    let builtin = builtin.to_str().unwrap();
    let python = test_python();
    let python = python.to_str().unwrap();

    assert!(cli(&["validate", gain], python).status.success());
    // A missing interpreter, and one without the package (the system python3: the package is
    // only in the test venv).
    for missing in ["/nonexistent/python3", "python3"] {
        let out = cli(&["validate", builtin], missing);
        assert!(out.status.success(), "{missing}: {out:?}");
        let out = cli(&["validate", gain], missing);
        assert_eq!(out.status.code(), Some(1), "{missing}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("unknown node type 'python:Gain'"), "{text}");
    }
    let out = cli(
        &["--python-nodes", "require", "validate", builtin],
        "/nonexistent/python3",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("/nonexistent/python3"), "{text}");
    let out = cli(&["--python-nodes", "off", "nodes"], python);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(!listed.contains("python:"), "{listed}");
    let out = cli(&["nodes"], python);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("python:Gain"), "{listed}");
}

/// `remotemedia-runtime <args>` with the test interpreter as `REMOTEMEDIA_PYTHON`.
fn run_cli(args: &[&str]) -> std::process::Output {
    let python = test_python();
    support::run_cli_with(args, &[("REMOTEMEDIA_PYTHON", python.as_os_str())])
}

fn wav_samples(path: &std::path::Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path).unwrap();
    match reader.spec().sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().map(Result::unwrap).collect(),
        hound::SampleFormat::Int => reader
            .samples::<i16>()
            .map(|s| f32::from(s.unwrap()) / 32768.0)
            .collect(),
    }
}

#[test]
fn the_python_gain_example_runs_in_process_and_in_a_worker_alike() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    write_wav(dir.path().join("in.wav").as_path());
    let manifest = example("python-gain.yaml");
    let manifest = manifest.to_str().unwrap();

    let listed = run_cli(&["nodes", "--python"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("python:Gain") && listed.contains("gain_db"),
        "{listed}"
    );
    run_cli(&["validate", manifest]);

    run_cli(&[
        "run",
        manifest,
        "--input",
        &path("in.wav"),
        "--output",
        &path("local.wav"),
    ]);
    let (before, after) = (
        wav_samples(dir.path().join("in.wav").as_path()),
        wav_samples(dir.path().join("local.wav").as_path()),
    );
    assert_eq!(before.len(), after.len());
    let db = 20.0 * (rms(&after) / rms(&before)).log10();
    assert!(
        (db + 6.0).abs() < 0.01,
        "level changed by {db} dB, not by gain_db = -6"
    );

    let python = test_python();
    let worker = ServedWorker::start_with(
        std::path::Path::new(manifest),
        &unique_link("pygain"),
        &[("REMOTEMEDIA_PYTHON", python.to_str().unwrap())],
    );
    run_cli(&[
        "run",
        "--connect",
        &worker.link,
        "--input",
        &path("in.wav"),
        "--output",
        &path("ipc.wav"),
    ]);
    assert!(
        std::fs::read(path("local.wav")).unwrap() == std::fs::read(path("ipc.wav")).unwrap(),
        "audio through the worker differs from in-process audio"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_a_worker_fails_only_that_session_and_the_worker_lives_on() {
    use remotemedia_runtime_core::ipc::{ClientOptions, IpcRunner, LinkName};

    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("die.json");
    let text = json!({
        "version": "v1",
        "metadata": {"name": "die"},
        "nodes": [{"id": "py", "node_type": "python:DieOn"}],
        "connections": []
    });
    std::fs::write(&manifest, text.to_string()).unwrap();
    let python = test_python();
    let mut env = test_python_env();
    env.push((
        "REMOTEMEDIA_PYTHON".to_owned(),
        python.to_str().unwrap().to_owned(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let worker = ServedWorker::start_with(&manifest, &unique_link("pydie"), &env);
    let link = LinkName::new(&worker.link).unwrap();
    let client = IpcRunner::connect(link, ClientOptions::default()).unwrap();

    let doomed = within(LIMIT, "open", client.stream_served()).await.unwrap();
    let survivor = within(LIMIT, "open", client.stream_served()).await.unwrap();
    for session in [&doomed, &survivor] {
        session
            .send_input(TransportData::new(RuntimeData::Text("warm".into())))
            .await
            .unwrap();
        next(session).await;
    }
    let killed = Instant::now();
    doomed
        .send_input(TransportData::new(RuntimeData::Text("die".into())))
        .await
        .unwrap();
    let failure = within(LIMIT, "the session's failure", doomed.recv_output()).await;
    let took = killed.elapsed();
    assert!(
        matches!(&failure, Err(SessionError::Aborted { reason, .. }) if reason.contains("node 'py' was lost") && reason.contains("SIGKILL")),
        "{failure:?}"
    );
    assert!(
        took < Duration::from_secs(1),
        "the failure reached the client after {took:?}"
    );

    // The other session, and new ones, go on in the same worker.
    survivor
        .send_input(TransportData::new(RuntimeData::Text("still".into())))
        .await
        .unwrap();
    assert_eq!(
        data(next(&survivor).await),
        RuntimeData::Text("still".into())
    );
    let fresh = within(LIMIT, "open", client.stream_served()).await.unwrap();
    fresh
        .send_input(TransportData::new(RuntimeData::Text("new".into())))
        .await
        .unwrap();
    assert_eq!(data(next(&fresh).await), RuntimeData::Text("new".into()));
}

/// A node process that never answers an item is replaced once the item deadline passes: the
/// item fails with an error naming the node, the next item is answered by the new process,
/// and the hung one is killed and reaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_answer_is_replaced_and_its_item_fails_naming_it() {
    let options = PythonOptions {
        item_timeout: Duration::from_secs(1),
        exit_grace: Duration::from_millis(200),
        ..options()
    };
    let mut registry = NodeRegistry::with_builtins();
    PythonNodes::discover(options)
        .expect("discover Python node types")
        .register(&mut registry);
    let runner = PipelineRunner::with_registry(registry);
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let manifest = single(&runner, "python:HangOn", &json!({"marker": marker}));
    let session = runner.create_stream_session(&manifest).unwrap();
    let send = |text: &str, sequence: u64| {
        TransportData::new(RuntimeData::Text(text.into())).with_sequence(sequence)
    };
    session.send_input(send("before", 0)).await.unwrap();
    assert_eq!(
        data(next(&session).await),
        RuntimeData::Text("before".into())
    );
    let hung = children_matching(&marker);
    assert_eq!(hung.len(), 1, "{hung:?}");

    session.send_input(send("hang", 1)).await.unwrap();
    let started = Instant::now();
    match next(&session).await {
        SessionOutput::Error(e) => {
            assert_eq!((e.node_id.as_str(), e.sequence), ("py", Some(1)));
            assert!(
                e.message.contains("python:HangOn did not answer within 1s"),
                "{}",
                e.message
            );
        }
        other @ SessionOutput::Data { .. } => panic!("expected an error item, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(1));
    session.send_input(send("after", 2)).await.unwrap();
    assert_eq!(
        data(next(&session).await),
        RuntimeData::Text("after".into())
    );
    let deadline = Instant::now() + LIMIT;
    while !reaped(hung[0]) {
        assert!(Instant::now() < deadline, "the hung process was not killed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    session.end_input().await;
    assert_eq!(session.recv_output().await.unwrap(), None);
}
