//! Headless Chromium (Debian's `chromium`, driven by npm `playwright-core`) as the real peer:
//! it loads the demo page the server serves, takes a WAV file as its microphone, connects by
//! WHIP, and the page shows the pipeline's level events and plays its returned audio.

mod support;

use std::path::PathBuf;
use std::process::Command;

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

#[test]
fn chromium_on_the_demo_page_gets_the_level_events_and_the_audio_back() {
    let server = Server::start(&["--manifest", example("voice-echo.yaml").as_str()]);
    let dir = tempfile::tempdir().unwrap();
    let wav = tone_wav(dir.path());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/demo_page.cjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("http://{}/", server.http))
        .arg(&wav)
        .args(["10", "30"])
        .env("NODE_PATH", node_modules())
        .output()
        .expect("run node (Node.js 20)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "page run failed: {stdout}\n{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
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
    // The page's Stop sent DELETE.
    server.await_metric(
        "remotemedia_webrtc_sessions_ended_total{reason=\"deleted\"}",
        1.0,
    );
}
