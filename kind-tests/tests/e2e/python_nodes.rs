//! Python node types in worker pods: a Pipeline on the example node image (python:Gain and
//! python:VoiceActivity, Silero VAD) is checked against that image's own node catalog, becomes
//! Ready, and serves a gRPC client streaming speech; a bad Python-node param and an unknown node
//! type are flagged naming node, path and image while the last good version keeps serving.

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use remotemedia_operator::crd::Pipeline;
use serde_json::{Value, json};

use crate::stream::{deploy_example, remove_pipeline, serving_addr};
use crate::support::{
    apply, kubectl, pipeline_condition, python, python_stream, repo, run, wait_for, wait_gone,
};

const NAME: &str = "python-voice";
const IMAGE: &str = "localhost/remotemedia-example-nodes:0.1.0";
/// How far a speech event may fall from where its phrase really starts or ends.
const EVENT_TOLERANCE_S: f64 = 0.1;

/// Deploys examples/pipelines/python-voice.yaml, streams generated speech through it and checks
/// the gain (level measured against the input's) and the speech events.
pub async fn python_nodes_in_pods(client: &Client, ns: &str, dir: &Path) {
    let pipeline = deploy_example(client, ns, NAME).await;
    let hash = pipeline
        .status
        .as_ref()
        .and_then(|s| s.manifest_hash.clone())
        .expect("status.manifestHash");
    let speech = dir.join("speech.wav");
    let truth: Value = serde_json::from_str(&run(python()
        .arg(repo().join("examples/audio/make_speech.py"))
        .arg(&speech)))
    .expect("make_speech.py prints JSON");

    stream_and_check(client, ns, &speech, &truth).await;

    // A bad param of a Python node: flagged naming node and path; nothing rolls.
    let api: Api<Pipeline> = Api::namespaced(client.clone(), ns);
    set_node(
        &api,
        json!({"id": "gain", "node_type": "python:Gain", "params": {"gain_db": 500}}),
    )
    .await;
    let message = wait_manifest_invalid(&api).await;
    for expected in ["spec.manifest.nodes[0].params.gain_db", "'gain'", IMAGE] {
        assert!(message.contains(expected), "{expected:?} not in: {message}");
    }
    // A node type the image does not have: named, with the image.
    set_node(
        &api,
        json!({"id": "gain", "node_type": "python:Louder", "params": {}}),
    )
    .await;
    let message = wait_manifest_invalid(&api).await;
    for expected in ["python:Louder", IMAGE] {
        assert!(message.contains(expected), "{expected:?} not in: {message}");
    }
    let now = api.get(NAME).await.expect("get");
    assert_eq!(
        now.status.as_ref().and_then(|s| s.manifest_hash.as_deref()),
        Some(hash.as_str()),
        "the last valid version is still the one deployed"
    );
    // ... and it still serves.
    stream_and_check(client, ns, &speech, &truth).await;
    remove_pipeline(client, ns, NAME).await;
}

/// A Pipeline on an image that cannot be pulled, and one on an image whose Python node module
/// fails to import: ManifestValid=Unknown saying why, nothing deployed, and the probe pod goes
/// with the Pipeline.
pub async fn unusable_images_are_reported(client: &Client, ns: &str) {
    let message = unusable_image("localhost/remotemedia-missing:0.0.0", client, ns).await;
    assert!(message.contains("cannot be pulled"), "{message}");
    let message = unusable_image("localhost/remotemedia-broken-nodes:0.1.0", client, ns).await;
    for expected in [
        "did not list its node types",
        "'broken_nodes' failed to import",
        "remotemedia_missing_dependency",
    ] {
        assert!(message.contains(expected), "{expected:?} not in: {message}");
    }
}

/// Applies a Pipeline on `image`, waits for CatalogUnavailable, checks nothing was deployed,
/// deletes it; the condition's message.
async fn unusable_image(image: &str, client: &Client, ns: &str) -> String {
    let yaml = format!(
        "apiVersion: remotemedia.dev/v1alpha1
kind: Pipeline
metadata: {{name: missing-image}}
spec:
  runtime: {{image: {image}}}
  manifest:
    version: v1
    nodes: [{{id: gain, node_type: python:Gain}}]
"
    );
    let out = apply(ns, &yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api: Api<Pipeline> = Api::namespaced(client.clone(), ns);
    let pipeline = wait_for(
        &api,
        "missing-image",
        "ManifestValid=Unknown (CatalogUnavailable)",
        |p: Option<&Pipeline>| {
            p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "ManifestValid" && c.reason == "CatalogUnavailable")
            })
        },
    )
    .await;
    let status = pipeline.status.expect("status");
    let valid = status
        .conditions
        .iter()
        .find(|c| c.type_ == "ManifestValid")
        .expect("ManifestValid");
    assert_eq!(valid.status, "Unknown", "{valid:?}");
    assert!(valid.message.contains(image), "{}", valid.message);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    assert!(
        deployments
            .get_opt("missing-image")
            .await
            .expect("get")
            .is_none(),
        "nothing is deployed"
    );
    run(kubectl().args([
        "delete",
        "pipeline",
        "missing-image",
        "-n",
        ns,
        "--wait=true",
    ]));
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_gone(&pods, &remotemedia_operator::catalog::object_name(image)).await;
    valid.message.clone()
}

/// Replaces node 0 of the manifest.
async fn set_node(api: &Api<Pipeline>, node: Value) {
    let patch = json!({"spec": {"manifest": {"nodes": [
        node,
        {"id": "level", "node_type": "AudioLevelNode"},
        {"id": "to16k", "node_type": "FastResampleNode",
         "params": {"source_rate": 48000, "target_rate": 16000, "quality": "High"}},
        {"id": "vad", "node_type": "python:VoiceActivity",
         "params": {"threshold": 0.5, "min_silence_ms": 300}},
    ]}}});
    api.patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the Pipeline");
}

/// Waits until ManifestValid=False for the current generation; its message.
async fn wait_manifest_invalid(api: &Api<Pipeline>) -> String {
    let pipeline = wait_for(
        api,
        NAME,
        "ManifestValid=False",
        pipeline_condition("ManifestValid", "False"),
    )
    .await;
    let status = pipeline.status.expect("status");
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    assert_eq!(
        ready.map(|c| c.status.as_str()),
        Some("True"),
        "still Ready on the last valid version: {status:?}"
    );
    status
        .conditions
        .into_iter()
        .find(|c| c.type_ == "ManifestValid")
        .map(|c| c.message)
        .unwrap_or_default()
}

async fn stream_and_check(client: &Client, ns: &str, speech: &Path, truth: &Value) {
    let reach = serving_addr(client, ns, &format!("{NAME}-grpc")).await;
    let lines = python_stream(reach.addr, speech);
    assert_eq!(
        lines.last().expect("lines")["closed"],
        "completed",
        "{lines:?}"
    );
    let errors: Vec<&Value> = lines.iter().filter(|l| l.get("error").is_some()).collect();
    assert!(errors.is_empty(), "errors: {errors:?}");
    check_gain(&lines, speech);
    check_speech_events(&lines, truth);
}

/// Each 20 ms frame's level after python:Gain is the input's, 6 dB down.
fn check_gain(lines: &[Value], speech: &Path) {
    let samples: Vec<f32> = hound::WavReader::open(speech)
        .expect("wav")
        .into_samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32768.0)
        .collect();
    let mut compared = 0;
    for line in lines.iter().filter(|l| l["node_id"] == "level") {
        let sequence = line["sequence"].as_u64().expect("sequence") as usize;
        let frame = &samples[sequence * 960..((sequence + 1) * 960).min(samples.len())];
        let rms =
            (frame.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / frame.len() as f64).sqrt();
        let input_db = 20.0 * rms.log10();
        if input_db < -40.0 {
            continue; // silence: both ends are the floor
        }
        let output_db = line["data"]["rms_db"].as_f64().expect("rms_db");
        assert!(
            (output_db - (input_db - 6.0)).abs() < 0.1,
            "frame {sequence}: input {input_db:.2} dB, after gain {output_db:.2} dB"
        );
        compared += 1;
    }
    assert!(compared > 50, "only {compared} speech frames had a level");
}

/// One speech_start and one speech_end per phrase, each within the tolerance.
fn check_speech_events(lines: &[Value], truth: &Value) {
    let events: Vec<&Value> = lines
        .iter()
        .filter(|l| l["node_id"] == "vad")
        .map(|l| &l["data"])
        .collect();
    let times = |kind: &str| -> Vec<f64> {
        events
            .iter()
            .filter(|e| e["event"] == kind)
            .map(|e| e["time_s"].as_f64().expect("time_s"))
            .collect()
    };
    let (starts, ends) = (times("speech_start"), times("speech_end"));
    let phrases = truth["phrases"].as_array().expect("phrases");
    assert_eq!(starts.len(), phrases.len(), "{events:?}");
    assert_eq!(ends.len(), phrases.len(), "{events:?}");
    for ((phrase, start), end) in phrases.iter().zip(&starts).zip(&ends) {
        let (want_start, want_end) = (
            phrase["start_s"].as_f64().expect("start_s"),
            phrase["end_s"].as_f64().expect("end_s"),
        );
        assert!(
            (start - want_start).abs() <= EVENT_TOLERANCE_S
                && (end - want_end).abs() <= EVENT_TOLERANCE_S,
            "{}: speech {start:.3}-{end:.3} s, phrase {want_start:.3}-{want_end:.3} s",
            phrase["text"]
        );
    }
}
