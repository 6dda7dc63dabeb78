use serde_json::{Value, json};

use super::*;

const DEFAULT_IMAGE: &str = "localhost/remotemedia-runtime:t";

fn request(operation: &str, manifest: &Value) -> AdmissionRequest<DynamicObject> {
    request_on(operation, manifest, None)
}

fn request_on(
    operation: &str,
    manifest: &Value,
    image: Option<&str>,
) -> AdmissionRequest<DynamicObject> {
    let mut spec = json!({"manifest": manifest});
    if let Some(image) = image {
        spec["runtime"] = json!({"image": image});
    }
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0f6f6d3c-1111-2222-3333-444455556666",
            "kind": {"group": "remotemedia.dev", "version": "v1alpha1", "kind": "Pipeline"},
            "resource": {"group": "remotemedia.dev", "version": "v1alpha1", "resource": "pipelines"},
            "requestKind": {"group": "remotemedia.dev", "version": "v1alpha1", "kind": "Pipeline"},
            "requestResource": {"group": "remotemedia.dev", "version": "v1alpha1", "resource": "pipelines"},
            "name": "p",
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "tester"},
            "object": {
                "apiVersion": "remotemedia.dev/v1alpha1",
                "kind": "Pipeline",
                "metadata": {"name": "p", "namespace": "default"},
                "spec": spec,
            },
            "dryRun": false,
        }
    }))
    .expect("a well-formed review");
    review.try_into().expect("has a request")
}

#[test]
fn a_valid_pipeline_is_allowed() {
    let registry = NodeRegistry::with_builtins();
    let r = review(
        &request(
            "CREATE",
            &json!({"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]}),
        ),
        &registry,
        DEFAULT_IMAGE,
    );
    assert!(r.allowed);
    assert_eq!(r.uid, "0f6f6d3c-1111-2222-3333-444455556666");
}

#[test]
fn an_invalid_pipeline_is_denied_naming_paths_and_nodes() {
    let registry = NodeRegistry::with_builtins();
    let manifest = json!({
        "version": "v1",
        "nodes": [
            {"id": "a", "node_type": "PassThrough"},
            {"id": "r", "node_type": "FastResampleNod"},
            {"id": "b", "node_type": "PassThrough"},
        ],
        "connections": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}],
    });
    let r = review(&request("UPDATE", &manifest), &registry, DEFAULT_IMAGE);
    assert!(!r.allowed);
    let message = r.result.message;
    assert!(
        message.contains("spec.manifest.nodes[1].node_type (node 'r')"),
        "{message}"
    );
    assert!(
        message.contains("FastResampleNode"),
        "the typo hint reaches the user: {message}"
    );
    assert!(message.contains("cycle"), "{message}");
}

#[test]
fn warnings_are_passed_on_without_denying() {
    let registry = NodeRegistry::with_builtins();
    let manifest = json!({"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough", "is_streaming": true}]});
    let r = review(&request("CREATE", &manifest), &registry, DEFAULT_IMAGE);
    assert!(r.allowed);
    let warnings = r.warnings.unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w.contains("is_streaming")),
        "{warnings:?}"
    );
}

#[test]
fn deletes_are_always_allowed() {
    let registry = NodeRegistry::with_builtins();
    let r = review(
        &request("DELETE", &json!({"version": "v9", "nodes": []})),
        &registry,
        DEFAULT_IMAGE,
    );
    assert!(r.allowed);
}

#[test]
fn python_nodes_on_the_default_image_are_denied_naming_the_type() {
    let registry = NodeRegistry::with_builtins();
    let manifest = json!({"version": "v1", "nodes": [{"id": "g", "node_type": "python:Gain"}]});
    let r = review(&request("CREATE", &manifest), &registry, DEFAULT_IMAGE);
    assert!(!r.allowed);
    assert!(
        r.result.message.contains("python:Gain"),
        "{}",
        r.result.message
    );
}

#[test]
fn another_image_is_admitted_with_a_warning_naming_it() {
    let registry = NodeRegistry::with_builtins();
    let manifest = json!({"version": "v1", "nodes": [{"id": "g", "node_type": "python:Gain"}]});
    let image = "localhost/remotemedia-example-nodes:0.1.0";
    let r = review(
        &request_on("CREATE", &manifest, Some(image)),
        &registry,
        DEFAULT_IMAGE,
    );
    assert!(r.allowed);
    let warnings = r.warnings.unwrap_or_default();
    assert!(warnings.iter().any(|w| w.contains(image)), "{warnings:?}");
    // Naming the default image explicitly is the default image.
    let r = review(
        &request_on("CREATE", &manifest, Some(DEFAULT_IMAGE)),
        &registry,
        DEFAULT_IMAGE,
    );
    assert!(!r.allowed);
}

/// Any JSON where a Pipeline's spec would be (what a client can send through the API server):
/// reviewed, allowed or denied, never a panic; a denial says why.
mod any_spec {
    use proptest::prelude::*;

    use super::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("PassThrough"),
                Just("AudioLevelNode"),
                Just("python:Gain"),
                Just("id"),
                Just("node_type"),
                Just("nodes"),
            ]
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("version".to_owned()),
                        Just("nodes".to_owned()),
                        Just("connections".to_owned()),
                        Just("id".to_owned()),
                        Just("node_type".to_owned()),
                        Just("params".to_owned()),
                        Just("from".to_owned()),
                        Just("to".to_owned()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn every_manifest_is_allowed_or_denied_with_a_reason(manifest in json_value()) {
            let response = review(&request("CREATE", &manifest), &NodeRegistry::with_builtins(), DEFAULT_IMAGE);
            if !response.allowed {
                prop_assert!(!response.result.message.is_empty());
            }
        }
    }
}
