//! The `remotemedia-runtime` binary on the example pipelines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use remotemedia_runtime_core::nodes::{NodeCatalog, NodeRegistry};

mod support;

use support::{example, write_wav};

fn bin() -> Command {
    Command::new(support::runtime_bin())
}

/// `remotemedia-runtime run <examples/pipelines/manifest> --input <input>`, ready for more args.
fn run_example(manifest: &str, input: &Path) -> Command {
    let mut cmd = bin();
    cmd.arg("run")
        .arg(example(manifest))
        .arg("--input")
        .arg(input);
    cmd
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A temporary directory holding the test WAV; keep the directory alive while using the file.
fn input_wav() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wav");
    write_wav(&input);
    (dir, input)
}

#[test]
fn validate_accepts_every_example() {
    let mut cmd = bin();
    cmd.arg("validate");
    for name in [
        "resample-chain.yaml",
        "audio-health.yaml",
        "text-sentences.json",
        "calculator.json",
    ] {
        cmd.arg(example(name));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn validate_prints_one_line_per_problem_with_location_and_fails() {
    let out = bin()
        .arg("validate")
        .arg(example("invalid/many-problems.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("many-problems.yaml:") && l.contains(": error: ")),
        "{text}"
    );
    assert!(
        text.contains(
            "many-problems.yaml:10:20: error: nodes[0].params.target_rate (node 'resample'): "
        ),
        "{text}"
    );
    assert!(
        text.contains("connections form a cycle: a -> b -> a"),
        "{text}"
    );
}

#[test]
fn nodes_lists_types_params_and_defaults() {
    let out = bin().args(["nodes", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The node catalog, version 1 (docs/node-catalog.md), which reads back as one.
    assert_eq!(v["version"], 1);
    let text = String::from_utf8(out.stdout).unwrap();
    let catalog = NodeCatalog::from_json(&text).expect("a node catalog");
    assert_eq!(catalog, NodeRegistry::with_builtins().catalog());
    let types: Vec<&str> = v["node_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 10);
    let chunker = v["node_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_type"] == "AudioChunkerNode")
        .unwrap();
    assert_eq!(chunker["params"][0]["name"], "chunk_size");
    assert_eq!(chunker["params"][0]["default"], 512);
    assert_eq!(chunker["accepts"], serde_json::json!(["audio"]));
    assert_eq!(chunker["params_schema"]["type"], "object");
    let text = stdout(&bin().arg("nodes").output().unwrap());
    assert!(
        text.contains("target_rate: integer [1..768000] (required)"),
        "{text}"
    );
}

#[test]
fn run_writes_resampled_audio_to_a_wav() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    write_wav(&input);
    let out = run_example("resample-chain.yaml", &input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = hound::WavReader::open(&output).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels), (16_000, 1));
    assert_eq!(reader.duration(), 48_000, "3 s at 16 kHz");
    assert!(String::from_utf8_lossy(&out.stderr).contains("150 frames"));
}

#[test]
fn run_prints_json_lines_with_node_type_and_data() {
    let (_dir, input) = input_wav();
    let out = run_example("audio-health.yaml", &input).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 30 windows of 100 ms, four analyzers each.
    assert_eq!(events.len(), 120);
    for e in &events {
        assert!(
            e["node_id"].is_string() && e["type"] == "json" && e["data"].is_object(),
            "{e}"
        );
    }
    let sustained = events
        .iter()
        .filter(|e| e["node_id"] == "silence" && e["data"]["is_sustained_silence"] == true)
        .count();
    assert!(sustained >= 1, "the 600 ms gap is sustained silence");
}

#[test]
fn run_refuses_an_invalid_manifest_with_its_problems() {
    let (_dir, input) = input_wav();
    let out = run_example("invalid/many-problems.yaml", &input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown node type 'AudioLevelNod'"));
}
