//! `remotemedia-webrtc --connect`: the pod's sidecar in front of a worker on the iceoryx2
//! link, with the flags the operator passes (operator/src/desired/pod.rs). A session opened
//! by WHIP runs in the worker, and ends there when the client DELETEs it; health follows the
//! worker.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use remotemedia_runtime_core::PipelineRunner;
use remotemedia_runtime_core::ipc::{LinkName, Worker, WorkerOptions};
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::serve::read_manifest_file;
use support::{LIMIT, Server, example, http, offer_from_aiortc, post_offer, run_client};

fn await_health(server: &Server, want: u16) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let (status, _, body) = http(server, "GET", "/healthz", "", b"");
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz stayed {status}: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_sidecar_it_streams_through_the_worker_and_follows_its_health() {
    let link = format!(
        "t-webrtc-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let (manifest, _) = read_manifest_file(
        Path::new(&example("voice-echo.yaml")),
        &NodeRegistry::with_builtins(),
    )
    .unwrap();
    let worker = Worker::bind(
        LinkName::new(&link).unwrap(),
        PipelineRunner::new(),
        manifest.into(),
        WorkerOptions::default(),
    )
    .unwrap();
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(worker.serve(async {
        let _ = worker_stopped.await;
    }));

    let checks = tokio::task::spawn_blocking(move || {
        let server = Server::start(&[
            "--connect",
            &link,
            "--max-sessions",
            "10",
            "--drain-seconds",
            "5",
        ]);
        await_health(&server, 200);
        let summary = run_client(&server, &["--seconds", "2"]);
        assert_eq!(summary["connection"], "connected", "{summary}");
        assert!(summary["events"].as_u64().unwrap() >= 10, "{summary}");
        assert!(summary["audio_rms"].as_f64().unwrap() > 0.1, "{summary}");
        assert_eq!(summary["delete_status"], 200, "{summary}");
        // The session ends at once, well before the bridge's 5 s fallback: a receive waiting
        // on the link wakes when the sidecar closes the session (it did not, once; the e2e
        // suite caught it).
        server.await_metric_within(
            "remotemedia_webrtc_open_sessions",
            0.0,
            Duration::from_secs(2),
        );
        server.await_metric(
            "remotemedia_webrtc_sessions_ended_total{reason=\"deleted\"}",
            1.0,
        );
        server
    })
    .await
    .unwrap();

    let _ = stop_worker.send(());
    worker.await.unwrap().unwrap();
    tokio::task::spawn_blocking(move || {
        await_health(&checks, 503);
        let offer = offer_from_aiortc();
        let (status, _, body) = post_offer(&checks, &offer);
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("could not open a session"), "{body}");
    })
    .await
    .unwrap();
}
