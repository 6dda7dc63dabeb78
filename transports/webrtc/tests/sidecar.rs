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
use support::{LIMIT, Server, example, http, http_as, offer_from_aiortc, post_offer, run_client};

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

/// A worker serving voice-echo on a link of its own, until the sender is used or dropped.
fn start_worker() -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), remotemedia_runtime_core::ipc::WorkerError>>,
) {
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
    (link, stop_worker, worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_sidecar_it_streams_through_the_worker_and_follows_its_health() {
    let (link, stop_worker, worker) = start_worker();

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

/// Session names: 128 random bits each, not the pipeline session's counter-based id a
/// `--connect` sidecar gets from the worker; with tokens on, only the opener's token ends or
/// patches a session, and someone else's session looks exactly like one that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_have_unguessable_names_that_only_their_opener_can_end() {
    let (link, stop_worker, worker) = start_worker();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, "alice-token\nbob-token\n").unwrap();
        let server = Server::start(&["--connect", &link, "--token-file", tokens.to_str().unwrap()]);
        await_health(&server, 200);
        let offer = offer_from_aiortc();
        let open = |token: &str| {
            let (status, headers, body) = http_as(
                &server,
                Some(token),
                "POST",
                "/whip",
                "application/sdp",
                offer.as_bytes(),
            );
            assert_eq!(status, 201, "{body}");
            let location = headers["location"].clone();
            let name = location.strip_prefix("/whip/").unwrap().to_owned();
            assert!(
                name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit()),
                "not 128 random bits: {location}"
            );
            name
        };
        let (alice, bob, bob_again) = (open("alice-token"), open("bob-token"), open("bob-token"));
        assert!(alice != bob && bob != bob_again);
        let shared =
            |a: &str, b: &str| a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        assert!(
            shared(&bob, &bob_again) < 8,
            "names opened one after the other share a prefix: {bob} {bob_again}"
        );

        let request = |token: &str, method: &str, name: &str| {
            let (status, _, body) = http_as(
                &server,
                Some(token),
                method,
                &format!("/whip/{name}"),
                "",
                b"",
            );
            (status, body)
        };
        // Alice cannot end or patch Bob's session; the answer is the one for no session at all.
        let nobody = "0123456789abcdef0123456789abcdef";
        assert_eq!(request("alice-token", "DELETE", nobody).0, 404);
        assert_eq!(
            request("alice-token", "DELETE", &bob),
            request("alice-token", "DELETE", nobody)
        );
        assert_eq!(
            request("alice-token", "PATCH", &bob),
            request("alice-token", "PATCH", nobody)
        );
        // Without a token, nothing is revealed either.
        assert_eq!(request("wrong", "DELETE", &bob).0, 401);
        // Bob's session is still there: Bob ends it; then it is gone for him too.
        assert_eq!(request("bob-token", "DELETE", &bob).0, 200);
        assert_eq!(
            request("bob-token", "DELETE", &bob),
            request("alice-token", "DELETE", nobody)
        );
        assert_eq!(request("alice-token", "DELETE", &alice).0, 200);
        assert_eq!(request("bob-token", "DELETE", &bob_again).0, 200);
        server.await_metric_within(
            "remotemedia_webrtc_open_sessions",
            0.0,
            Duration::from_secs(5),
        );
    })
    .await
    .unwrap();
    let _ = stop_worker.send(());
    worker.await.unwrap().unwrap();
}
