//! The `remotemedia-webrtc` binary as a process, with aiortc (tests/clients/whip_client.py)
//! as the real WebRTC peer: audio and events both ways, bad requests, the session limit,
//! clients that vanish or never connect, and drain on SIGTERM.

mod support;

use std::time::Duration;

use support::{Server, example, http, offer_from_aiortc, post_offer, run_client, spawn_client};

#[test]
fn aiortc_round_trip_returns_the_audio_and_the_level_events() {
    let server = Server::start(&["--manifest", example("voice-echo.yaml").as_str()]);
    let summary = run_client(&server, &["--seconds", "3"]);
    assert_eq!(summary["status"], 201, "{summary}");
    assert!(
        summary["location"].as_str().unwrap().starts_with("/whip/"),
        "{summary}"
    );
    assert_eq!(summary["connection"], "connected", "{summary}");
    // 3 s in 100 ms windows: about 30 level events (some may still be in flight at DELETE).
    assert!(summary["events"].as_u64().unwrap() >= 15, "{summary}");
    assert_eq!(
        summary["event_nodes"],
        serde_json::json!(["level"]),
        "{summary}"
    );
    assert_eq!(summary["errors"], serde_json::json!([]), "{summary}");
    // The 0.5-amplitude tone came back through PassThrough (silence would be ~0).
    let rms = summary["audio_rms"].as_f64().unwrap();
    assert!(rms > 0.1, "returned audio rms {rms}: {summary}");
    assert_eq!(summary["delete_status"], 200, "{summary}");
    server.await_metric("remotemedia_webrtc_open_sessions", 0.0);
    server.await_metric(
        "remotemedia_webrtc_sessions_ended_total{reason=\"deleted\"}",
        1.0,
    );
    assert!(server.metric("remotemedia_webrtc_packets_received_total") > 100.0);
    assert!(server.metric("remotemedia_webrtc_packets_sent_total") > 100.0);
}

#[test]
fn bad_requests_get_a_4xx_with_a_reason_and_the_server_goes_on() {
    let server = Server::start(&["--manifest", example("voice-echo.yaml").as_str()]);
    let offer = offer_from_aiortc();

    let (status, _, body) = http(&server, "POST", "/whip", "text/plain", offer.as_bytes());
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("application/sdp"), "{body}");

    let (status, _, body) = http(&server, "POST", "/whip", "", offer.as_bytes());
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("none"), "{body}");

    let (status, _, body) = http(&server, "POST", "/whip", "application/sdp", b"{\"sdp\":1}");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not SDP"), "{body}");

    let video_only = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
    let (status, _, body) = http(
        &server,
        "POST",
        "/whip",
        "application/sdp",
        video_only.as_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no audio section"), "{body}");

    // Right shape, but not an offer a peer connection can answer (no ICE credentials, no
    // DTLS fingerprint).
    let bare = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
    let (status, _, body) = http(&server, "POST", "/whip", "application/sdp", bare.as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not accepted"), "{body}");

    let huge = format!("{offer}{}", "a=x-padding\r\n".repeat(10_000));
    let (status, _, body) = http(&server, "POST", "/whip", "application/sdp", huge.as_bytes());
    assert_eq!(status, 413, "{body}");

    let (status, _, body) = http(&server, "DELETE", "/whip/no-such-session", "", b"");
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = http(&server, "PATCH", "/whip/no-such-session", "", b"");
    assert_eq!(status, 404, "{body}");

    let (status, headers, _) = http(&server, "OPTIONS", "/whip", "", b"");
    assert_eq!(status, 204);
    assert_eq!(
        headers.get("accept-post").map(String::as_str),
        Some("application/sdp")
    );

    // Nothing above cost a session, and the server still answers a good offer.
    assert_eq!(server.metric("remotemedia_webrtc_open_sessions"), 0.0);
    assert_eq!(
        server.metric("remotemedia_webrtc_offers_total{outcome=\"bad_offer\"}"),
        3.0
    );
    let (status, _, _) = http(&server, "GET", "/healthz", "", b"");
    assert_eq!(status, 200);
    let summary = run_client(&server, &["--seconds", "1"]);
    assert_eq!(summary["connection"], "connected", "{summary}");
}

#[test]
fn the_session_limit_refuses_with_429_until_a_place_frees() {
    let server = Server::start(&[
        "--manifest",
        example("voice-echo.yaml").as_str(),
        "--max-sessions",
        "1",
    ]);
    let first = spawn_client(&server, &["--seconds", "4"]);
    server.await_metric("remotemedia_webrtc_open_sessions", 1.0);
    let offer = offer_from_aiortc();
    let (status, _, body) = post_offer(&server, &offer);
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("maximum of 1 sessions"), "{body}");
    let summary = first.finish();
    assert_eq!(summary["delete_status"], 200, "{summary}");
    server.await_metric("remotemedia_webrtc_open_sessions", 0.0);
    let summary = run_client(&server, &["--seconds", "1"]);
    assert_eq!(summary["status"], 201, "{summary}");
}

#[test]
fn sessions_whose_client_never_connects_or_vanishes_are_ended() {
    let server = Server::start(&[
        "--manifest",
        example("voice-echo.yaml").as_str(),
        "--connect-timeout-secs",
        "2",
    ]);
    // An answer nobody uses.
    let offer = offer_from_aiortc();
    let (status, _, body) = post_offer(&server, &offer);
    assert_eq!(status, 201, "{body}");
    server.await_metric(
        "remotemedia_webrtc_sessions_ended_total{reason=\"never_connected\"}",
        1.0,
    );
    // A client that streams, then leaves without DELETE.
    let summary = run_client(&server, &["--seconds", "1", "--vanish"]);
    assert_eq!(summary["connection"], "connected", "{summary}");
    server.await_metric(
        "remotemedia_webrtc_sessions_ended_total{reason=\"disconnected\"}",
        1.0,
    );
    server.await_metric("remotemedia_webrtc_open_sessions", 0.0);
}

#[test]
fn sigterm_refuses_new_sessions_and_lets_open_ones_finish() {
    let mut server = Server::start(&["--manifest", example("voice-echo.yaml").as_str()]);
    let client = spawn_client(&server, &["--seconds", "3"]);
    server.await_metric("remotemedia_webrtc_open_sessions", 1.0);
    server.signal("TERM");
    server.await_stderr("draining");
    let (status, _, body) = http(&server, "GET", "/healthz", "", b"");
    assert_eq!(status, 503, "{body}");
    // Still alive, so a liveness probe leaves the draining sidecar be.
    let (status, _, body) = http(&server, "GET", "/livez", "", b"");
    assert_eq!(status, 200, "{body}");
    let offer = offer_from_aiortc();
    let (status, headers, body) = post_offer(&server, &offer);
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"));
    // The open session keeps streaming to its end.
    let summary = client.finish();
    assert!(summary["audio_rms"].as_f64().unwrap() > 0.1, "{summary}");
    assert_eq!(summary["delete_status"], 200, "{summary}");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    server.await_stderr("stopped (0 sessions cut");
}

#[test]
fn a_token_file_guards_whip_but_not_health_or_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# rotated\nold-secret\nnew-secret\n").unwrap();
    let server = Server::start(&[
        "--manifest",
        example("voice-echo.yaml").as_str(),
        "--token-file",
        tokens.to_str().unwrap(),
    ]);
    let offer = offer_from_aiortc();
    let (status, headers, body) = post_offer(&server, &offer);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("missing"), "{body}");
    assert_eq!(
        headers.get("www-authenticate").map(String::as_str),
        Some("Bearer")
    );
    let summary = run_client(&server, &["--seconds", "1", "--token", "wrong"]);
    assert_eq!(summary["status"], 401, "{summary}");
    assert!(
        summary["body"].as_str().unwrap().contains("unknown token"),
        "{summary}"
    );
    // Either listed token works (rotation), for the offer and for the DELETE.
    let summary = run_client(&server, &["--seconds", "1", "--token", "old-secret"]);
    assert_eq!(summary["connection"], "connected", "{summary}");
    assert_eq!(summary["delete_status"], 200, "{summary}");
    let (status, _, _) = http(&server, "DELETE", "/whip/anything", "", b"");
    assert_eq!(status, 401);
    for open in ["/healthz", "/livez", "/metrics", "/"] {
        let (status, _, _) = http(&server, "GET", open, "", b"");
        assert_eq!(status, 200, "{open}");
    }
    assert_eq!(
        server.metric("remotemedia_webrtc_offers_total{outcome=\"unauthorized\"}"),
        2.0
    );
}

#[test]
fn the_demo_page_is_served_at_the_root() {
    let server = Server::start(&["--manifest", example("voice-echo.yaml").as_str()]);
    let (status, headers, body) = http(&server, "GET", "/", "", b"");
    assert_eq!(status, 200);
    assert!(headers["content-type"].starts_with("text/html"));
    assert!(body.contains("createDataChannel(\"events\")"), "{body}");
}

#[test]
fn a_manifest_with_errors_stops_the_server_with_them() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_remotemedia-webrtc"))
        .args(["--manifest", example("invalid/many-problems.yaml").as_str()])
        .args(["--listen", "127.0.0.1:0", "--udp-port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("many-problems.yaml:"), "{stderr}");
}

/// Noise on the public UDP port, random bytes and STUN checks naming no session, sent while a
/// session streams: the session keeps streaming, the engine drops what is over its budget
/// unread (the STUN checks alone are twice the budget), and the server's CPU stays bounded.
#[test]
fn a_flood_of_foreign_datagrams_does_not_stop_a_streaming_session() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let server = Server::start(&["--manifest", example("voice-echo.yaml").as_str()]);
    let client = spawn_client(&server, &["--seconds", "4"]);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (stop, sent, target) = (stop.clone(), sent.clone(), server.media);
        std::thread::spawn(move || {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut random = move || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            while !stop.load(Ordering::Relaxed) {
                for i in 0..200u32 {
                    let datagram = if i % 2 == 0 {
                        (0..100).map(|_| random() as u8).collect::<Vec<u8>>()
                    } else {
                        stun_check(
                            &format!("{:08x}:{:08x}", random() as u32, random() as u32),
                            random(),
                        )
                    };
                    let _ = socket.send_to(&datagram, target);
                }
                sent.fetch_add(200, Ordering::Relaxed);
                // About 20,000 datagrams a second.
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let cpu_before = server.cpu_time();
    let started = std::time::Instant::now();
    let summary = client.finish();
    let (cpu, wall) = (server.cpu_time() - cpu_before, started.elapsed());
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();
    assert_eq!(summary["connection"], "connected", "{summary}");
    assert!(summary["events"].as_u64().unwrap_or(0) >= 20, "{summary}");
    assert!(
        summary["audio_rms"].as_f64().unwrap_or(0.0) > 0.1,
        "{summary}"
    );
    let sent = sent.load(Ordering::Relaxed);
    assert!(
        sent > 20_000,
        "the flood was too thin to mean anything: {sent}"
    );
    assert!(
        server.metric("remotemedia_webrtc_datagrams_rate_limited_total") > 0.0,
        "nothing over the budget was dropped unread ({sent} sent)"
    );
    let cores = cpu.as_secs_f64() / wall.as_secs_f64();
    println!(
        "flood: {sent} datagrams in {wall:?}, {} dropped unread, {} ignored, server {cores:.3} cores",
        server.metric("remotemedia_webrtc_datagrams_rate_limited_total"),
        server.metric("remotemedia_webrtc_datagrams_ignored_total")
    );
    assert!(
        cores < 0.5,
        "the server used {cores:.2} cores during the flood"
    );
}

/// A STUN binding request with `username`, a random transaction id, a PRIORITY and a
/// MESSAGE-INTEGRITY that checks against nothing (RFC 8489 layout): it parses as an ICE check,
/// so the engine must look up the session it names.
fn stun_check(username: &str, id: u64) -> Vec<u8> {
    let name = username.as_bytes();
    let padded = name.len().div_ceil(4) * 4;
    let attributes = 4 + padded + 8 + 4 + 20;
    let mut out = Vec::with_capacity(20 + attributes);
    out.extend_from_slice(&0x0001u16.to_be_bytes()); // Binding request
    out.extend_from_slice(&(attributes as u16).to_be_bytes());
    out.extend_from_slice(&0x2112_A442u32.to_be_bytes()); // magic cookie
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(id as u32).to_be_bytes());
    out.extend_from_slice(&0x0006u16.to_be_bytes()); // USERNAME
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name);
    out.resize(20 + 4 + padded, 0);
    out.extend_from_slice(&0x0024u16.to_be_bytes()); // PRIORITY
    out.extend_from_slice(&4u16.to_be_bytes());
    out.extend_from_slice(&0x6e00_01ffu32.to_be_bytes());
    out.extend_from_slice(&0x0008u16.to_be_bytes()); // MESSAGE-INTEGRITY
    out.extend_from_slice(&20u16.to_be_bytes());
    out.extend_from_slice(&[0xAB; 20]);
    out
}
