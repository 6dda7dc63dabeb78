//! Analysis nodes on known signals: the levels and flags they report.

#![allow(clippy::needless_pass_by_value)] // test helpers take owned JSON for readable call sites

use remotemedia_runtime_core::nodes::{NodeRegistry, Outputs};
use remotemedia_runtime_core::{AudioBuffer, RuntimeData};
use serde_json::{Value, json};

fn events(node_type: &str, params: Value, inputs: Vec<AudioBuffer>) -> Vec<Value> {
    let mut node = NodeRegistry::with_builtins()
        .get(node_type)
        .unwrap()
        .create(&params)
        .unwrap()
        .into_local()
        .expect("built-in nodes are in-process");
    let mut out = Outputs::default();
    let mut all = Vec::new();
    for a in inputs {
        node.process(RuntimeData::Audio(a), &mut out).unwrap();
        all.extend(out.drain().map(|d| match d {
            RuntimeData::Json(v) => v,
            other => panic!("{other:?}"),
        }));
    }
    all
}

fn sine(amp: f32, frames: usize, rate: u32) -> Vec<f32> {
    (0..frames)
        .map(|i| amp * (i as f32 * 2.0 * std::f32::consts::PI * 1000.0 / rate as f32).sin())
        .collect()
}

fn stereo(left: &[f32], right: &[f32]) -> Vec<f32> {
    left.iter().zip(right).flat_map(|(&l, &r)| [l, r]).collect()
}

#[test]
fn audio_level_of_full_scale_quiet_and_silent_signals() {
    let full = AudioBuffer::new(sine(1.0, 4800, 48_000), 48_000, 1);
    let quiet = AudioBuffer::new(sine(0.01, 4800, 48_000), 48_000, 1);
    let silent = AudioBuffer::new(vec![0.0; 4800], 48_000, 1);
    let e = events("AudioLevelNode", json!({}), vec![full, quiet, silent]);
    assert_eq!(
        (e[0]["rms_db"].as_f64(), e[0]["peak_db"].as_f64()),
        (Some(-3.01), Some(0.0))
    );
    assert_eq!(
        (e[0]["is_low_volume"].as_bool(), e[0]["health"].as_f64()),
        (Some(false), Some(1.0))
    );
    assert_eq!(e[1]["rms_db"].as_f64(), Some(-43.01));
    assert_eq!(
        (
            e[1]["is_low_volume"].as_bool(),
            e[1]["is_silence"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(
        (e[2]["rms_db"].as_f64(), e[2]["is_silence"].as_bool()),
        (Some(-120.0), Some(true))
    );
    assert_eq!(e[0]["duration_ms"].as_f64(), Some(100.0));
}

#[test]
fn silence_duration_is_right_for_stereo() {
    // 30 frames of 20 ms stereo silence after some sound: 600 ms, not 1200 ms.
    let sound = AudioBuffer::new(
        stereo(&sine(0.5, 960, 48_000), &sine(0.5, 960, 48_000)),
        48_000,
        2,
    );
    let mut inputs = vec![sound];
    inputs.extend((0..30).map(|_| AudioBuffer::new(vec![0.0; 960 * 2], 48_000, 2)));
    let e = events(
        "SilenceDetectorNode",
        json!({"sustained_silence_ms": 500}),
        inputs,
    );
    let last = e.last().unwrap();
    assert_eq!(last["silence_duration_ms"].as_f64(), Some(600.0));
    assert_eq!(last["is_sustained_silence"].as_bool(), Some(true));
    // Sustained from the 25th silent frame (500 ms) on.
    let first_sustained = e
        .iter()
        .position(|v| v["is_sustained_silence"] == true)
        .unwrap();
    assert_eq!(first_sustained, 25);
}

#[test]
fn silence_detector_counts_short_dropouts() {
    let tone = || AudioBuffer::new(sine(0.5, 960, 48_000), 48_000, 1);
    let gap = || AudioBuffer::new(vec![0.0; 960], 48_000, 1);
    let inputs = vec![tone(), gap(), tone(), gap(), tone(), gap(), tone()];
    let e = events(
        "SilenceDetectorNode",
        json!({"dropout_count_threshold": 3}),
        inputs,
    );
    let last = e.last().unwrap();
    assert_eq!(last["dropout_count"].as_u64(), Some(3));
    assert_eq!(last["has_intermittent_dropouts"].as_bool(), Some(true));
}

#[test]
fn clipping_is_saturation_not_a_low_crest_factor() {
    let clean = AudioBuffer::new(sine(0.9, 4800, 48_000), 48_000, 1);
    let clipped: Vec<f32> = sine(3.0, 4800, 48_000)
        .into_iter()
        .map(|s| s.clamp(-1.0, 1.0))
        .collect();
    let e = events(
        "ClippingDetectorNode",
        json!({}),
        vec![clean, AudioBuffer::new(clipped, 48_000, 1)],
    );
    assert_eq!(e[0]["is_clipping"].as_bool(), Some(false));
    assert_eq!(e[0]["crest_factor_db"].as_f64(), Some(3.01));
    assert_eq!(e[0]["saturation_ratio"].as_f64(), Some(0.0));
    assert_eq!(e[1]["is_clipping"].as_bool(), Some(true));
    assert!(
        e[1]["saturation_ratio"].as_f64().unwrap() > 50.0,
        "{}",
        e[1]
    );
}

#[test]
fn channel_balance_finds_imbalance_and_dead_channels() {
    let loud = sine(0.5, 4800, 48_000);
    let quieter = sine(0.05, 4800, 48_000);
    let silent = vec![0.0; 4800];
    let e = events(
        "ChannelBalanceNode",
        json!({}),
        vec![
            AudioBuffer::new(stereo(&loud, &loud), 48_000, 2),
            AudioBuffer::new(stereo(&loud, &quieter), 48_000, 2),
            AudioBuffer::new(stereo(&loud, &silent), 48_000, 2),
            AudioBuffer::new(loud.clone(), 48_000, 1),
        ],
    );
    assert_eq!(
        (
            e[0]["imbalance_db"].as_f64(),
            e[0]["is_imbalanced"].as_bool()
        ),
        (Some(0.0), Some(false))
    );
    assert_eq!(
        (
            e[1]["imbalance_db"].as_f64(),
            e[1]["is_imbalanced"].as_bool()
        ),
        (Some(20.0), Some(true))
    );
    assert_eq!(e[2]["dead_channel"].as_str(), Some("right"));
    assert_eq!(e[2]["duration_ms"].as_f64(), Some(100.0));
    assert_eq!(e[3]["applicable"].as_bool(), Some(false));
}
