//! Headless Chromium (Debian's `chromium`, driven by npm `playwright-core`) as the real peer:
//! it loads the demo page the server serves, takes a WAV file as its microphone, connects by
//! WHIP, and the page shows the pipeline's level events and plays its returned audio.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use remotemedia_server::test_pki::TestCa;
use support::{Server, example};

/// playwright-core's `node_modules` (`scripts/browser-tools.sh`, which `make test` runs).
fn node_modules() -> PathBuf {
    if let Some(dir) = std::env::var_os("REMOTEMEDIA_NODE_MODULES") {
        return dir.into();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let dir = home.join(".cache/remotemedia/node-tools-v1/node_modules");
    assert!(
        dir.join("playwright-core").exists(),
        "the browser test needs playwright-core and chromium: run scripts/browser-tools.sh \
         (or set REMOTEMEDIA_NODE_MODULES)"
    );
    dir
}

/// Five seconds of a 440 Hz tone at half scale, 48 kHz mono 16-bit: Chromium's fake
/// microphone loops it.
fn tone_wav(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("tone48k.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..48_000 * 5 {
        let t = f64::from(i) / 48_000.0;
        let s = 0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin();
        w.write_sample((s * f64::from(i16::MAX)) as i16).unwrap();
    }
    w.finalize().unwrap();
    path
}

/// Runs the demo page at `url` in headless Chromium with `wav` as its microphone until it has
/// seen ten events; its summary.
fn run_page(url: &str, wav: &Path, envs: &[(&str, &Path)]) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/demo_page.cjs");
    let mut node = Command::new("node");
    node.arg(&script)
        .arg(url)
        .arg(wav)
        .args(["10", "30"])
        .env("NODE_PATH", node_modules());
    for (name, value) in envs {
        node.env(name, value);
    }
    let out = node.output().expect("run node (Node.js 20)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "page run failed: {stdout}\n{stderr}");
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

#[test]
fn chromium_on_the_demo_page_gets_the_level_events_and_the_audio_back() {
    let server = Server::start(&["--manifest", example("voice-echo.yaml").as_str()]);
    let dir = tempfile::tempdir().unwrap();
    let wav = tone_wav(dir.path());
    let summary = run_page(&format!("http://{}/", server.http), &wav, &[]);
    assert!(summary["levelEvents"].as_u64().unwrap() >= 10, "{summary}");
    assert_eq!(summary["nodes"], serde_json::json!(["level"]), "{summary}");
    // The tone's level as the pipeline measured it (-9 dB RMS sent; Opus and Chromium's
    // capture path take a few dB).
    let rms_db = summary["firstEvent"]["data"]["data"]["rms_db"]
        .as_f64()
        .unwrap();
    assert!((-20.0..-6.0).contains(&rms_db), "{summary}");
    assert!(
        summary["maxRemoteRms"].as_f64().unwrap() > 0.05,
        "{summary}"
    );
    assert_eq!(summary["stateAfterStop"], "stopped", "{summary}");
    assert_eq!(summary["deleteStatus"], 200, "{summary}");
    // The page's Stop sent DELETE.
    server.await_metric(
        "remotemedia_webrtc_sessions_ended_total{reason=\"deleted\"}",
        1.0,
    );
}

/// This machine's address on its default route: not loopback, so a page served there over
/// plain http is not a secure context and gets no microphone.
fn routed_address() -> std::net::IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    // Sends nothing: picks the source address of the route.
    socket.connect("192.0.2.1:9").expect("a default route");
    socket.local_addr().unwrap().ip()
}

#[test]
fn chromium_gets_the_microphone_on_the_https_demo_page_of_a_routed_address() {
    let ip = routed_address().to_string();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("RemoteMedia test CA");
    let files = ca.write_server_files(dir.path(), &[&ip]);
    let server = Server::start_on(
        &ip,
        &[
            "--manifest",
            example("voice-echo.yaml").as_str(),
            "--tls-cert",
            files.cert.to_str().unwrap(),
            "--tls-key",
            files.key.to_str().unwrap(),
        ],
    );
    assert_eq!(server.scheme, "https");
    let wav = tone_wav(dir.path());
    let summary = run_page(
        &format!("https://{}/", server.http),
        &wav,
        &[("TRUST_CERT", &files.cert)],
    );
    assert_eq!(summary["protocol"], "https:", "{summary}");
    assert_eq!(summary["secureContext"], true, "{summary}");
    assert!(summary["levelEvents"].as_u64().unwrap() >= 10, "{summary}");
    assert!(
        summary["maxRemoteRms"].as_f64().unwrap() > 0.05,
        "{summary}"
    );
    assert_eq!(summary["stateAfterStop"], "stopped", "{summary}");
}
