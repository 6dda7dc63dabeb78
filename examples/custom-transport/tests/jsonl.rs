//! The JSON Lines transport's wire protocol as a plain client sees it (bad lines, served
//! pipeline, refusals). The conformance suite runs through it in `conformance/tests/jsonl.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use remotemedia_example_jsonl::server::{ServeOptions, serve};
use remotemedia_runtime_core::PipelineRunner;
use remotemedia_runtime_core::manifest::{Format, Manifest};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// A server on a fresh socket in `dir`; stops when the returned sender is dropped.
fn start(
    dir: &Path,
    served: Option<&str>,
    allow: bool,
) -> (PathBuf, tokio::sync::oneshot::Sender<()>) {
    let mut runner = PipelineRunner::new();
    if let Some(text) = served {
        let manifest = Manifest::from_text(text, Format::Json, runner.registry()).unwrap();
        runner = runner.serving(manifest).unwrap();
    }
    let socket = dir.join("rm.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let options = ServeOptions {
        allow_client_manifests: allow,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, Arc::new(runner), options, async move {
        let _ = stopped.await;
    }));
    (socket, stop)
}

/// Writes `lines`, closes the write side, and returns every line the server sent.
async fn exchange(socket: &Path, lines: &[&str]) -> Vec<Value> {
    let stream = UnixStream::connect(socket).await.unwrap();
    let (read, mut write) = stream.into_split();
    for line in lines {
        write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    write.shutdown().await.unwrap();
    let mut replies = Vec::new();
    let mut reader = BufReader::new(read).lines();
    while let Some(line) = reader.next_line().await.unwrap() {
        replies.push(serde_json::from_str(&line).unwrap());
    }
    replies
}

const CALCULATOR: &str = r#"{"version":"v1","nodes":[{"id":"calc","node_type":"CalculatorNode"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_are_answered_by_line_number_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, _stop) = start(dir.path(), Some(CALCULATOR), false);
    let add = json!({"data": {"type": "json", "data": {"operation": "add", "operands": [2, 3]}}, "sequence": 1});
    let bad_audio = json!({"data": {"type": "audio", "data": {"samples": [0.0], "sample_rate": 0, "channels": 1}}});
    let replies = exchange(
        &socket,
        &[
            &add.to_string(),
            "this is not json",
            &bad_audio.to_string(),
            r#"{"open": {"manifest": {}}}"#,
            r#"{"data": {"type": "json", "data": {"operation": "cube", "operands": [1, 2]}}, "sequence": 2}"#,
            r#"{"end": true}"#,
        ],
    )
    .await;
    let kinds: Vec<&str> = replies
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"ready"));
    assert_eq!(kinds.last(), Some(&"closed"));
    assert_eq!(replies.last().unwrap()["reason"], "completed");
    let invalid: Vec<(u64, &str)> = replies
        .iter()
        .filter(|r| r["kind"] == "invalid")
        .map(|r| (r["line"].as_u64().unwrap(), r["message"].as_str().unwrap()))
        .collect();
    assert_eq!(invalid.len(), 3, "{replies:?}");
    assert_eq!(invalid[0].0, 2);
    assert!(invalid[0].1.contains("not a protocol line"));
    assert_eq!(invalid[1].0, 3);
    assert!(
        invalid[1].1.contains("sample_rate is 0"),
        "{}",
        invalid[1].1
    );
    assert_eq!(invalid[2].0, 4);
    let data = replies.iter().find(|r| r["kind"] == "data").unwrap();
    assert_eq!(
        (data["node_id"].as_str(), data["sequence"].as_u64()),
        (Some("calc"), Some(1))
    );
    assert_eq!(data["data"]["data"]["result"], 5.0);
    let error = replies.iter().find(|r| r["kind"] == "error").unwrap();
    assert_eq!(
        (error["node_id"].as_str(), error["sequence"].as_u64()),
        (Some("calc"), Some(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_manifests_are_refused_unless_allowed_and_checked_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, _stop) = start(dir.path(), Some(CALCULATOR), false);
    let open = json!({"open": {"manifest": serde_json::from_str::<Value>(CALCULATOR).unwrap()}});
    let replies = exchange(&socket, &[&open.to_string()]).await;
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not allowed")
    );

    let dir = tempfile::tempdir().unwrap();
    let (socket, _stop) = start(dir.path(), None, true);
    let broken = json!({"open": {"manifest": {"version": "v1", "nodes": [{"id": "x", "node_type": "Nope"}]}}});
    let replies = exchange(&socket, &[&broken.to_string()]).await;
    let reason = replies[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("nodes[0].node_type") && reason.contains("Nope"),
        "{reason}"
    );
    let replies = exchange(&socket, &[r#"{"data": {"type": "text", "data": "x"}}"#]).await;
    assert!(
        replies[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no pipeline of its own")
    );
}
