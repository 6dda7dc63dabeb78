use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, PodStatus,
};
use remotemedia_runtime_core::data::DataKind;
use remotemedia_runtime_core::nodes::NodeTypeInfo;
use serde_json::json;

use super::*;
use crate::validation::check_pipeline;

const IMAGE: &str = "localhost/remotemedia-example-nodes:0.1.0";

#[test]
fn only_another_image_needs_its_catalog_read() {
    let default = "localhost/remotemedia-runtime:0.1.0";
    assert_eq!(source(None, default), Source::Builtins);
    assert_eq!(source(Some(default), default), Source::Builtins);
    assert_eq!(source(Some(IMAGE), default), Source::Image(IMAGE));
}

#[test]
fn the_probe_runs_nodes_json_once_hardened_and_bounded() {
    let pod = probe_pod("media", IMAGE, "Never", None);
    assert_eq!(pod.metadata.name, Some(object_name(IMAGE)));
    assert_ne!(object_name(IMAGE), object_name("localhost/other:1"));
    let spec = pod.spec.expect("spec");
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.active_deadline_seconds, Some(PROBE_DEADLINE_SECONDS));
    assert_eq!(spec.automount_service_account_token, Some(false));
    let container = &spec.containers[0];
    assert_eq!(container.image.as_deref(), Some(IMAGE));
    assert_eq!(container.image_pull_policy.as_deref(), Some("Never"));
    assert_eq!(
        container.args.as_deref(),
        Some(&["nodes".to_owned(), "--json".to_owned()][..])
    );
    let security = container.security_context.as_ref().expect("hardened");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(
        spec.security_context.and_then(|s| s.run_as_non_root),
        Some(true)
    );
    assert!(
        container
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .is_some_and(|l| l.contains_key("memory")),
        "a probe's memory is bounded"
    );
}

fn pod_in(phase: &str, state: ContainerState) -> Pod {
    let mut pod = probe_pod("media", IMAGE, "IfNotPresent", None);
    pod.status = Some(PodStatus {
        phase: Some(phase.to_owned()),
        container_statuses: Some(vec![ContainerStatus {
            name: PROBE_CONTAINER.to_owned(),
            image: IMAGE.to_owned(),
            image_id: "sha256:abc".to_owned(),
            state: Some(state),
            ..ContainerStatus::default()
        }]),
        ..PodStatus::default()
    });
    pod
}

fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
        }),
        ..ContainerState::default()
    }
}

#[test]
fn a_probe_pods_state_says_what_happened() {
    let terminated = |code: i32, message: &str| ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: code,
            message: Some(message.to_owned()),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    };
    assert_eq!(
        probe_state(&pod_in("Succeeded", terminated(0, ""))),
        ProbeState::Succeeded {
            image_id: Some("sha256:abc".to_owned())
        }
    );
    let ProbeState::Failed(why) = probe_state(&pod_in(
        "Failed",
        terminated(
            2,
            "error: listing the Python node types\nnode module 'vad' failed to import: ModuleNotFoundError\n",
        ),
    )) else {
        panic!("not failed");
    };
    assert!(
        why.contains("code 2") && why.contains("ModuleNotFoundError"),
        "{why}"
    );
    let ProbeState::PullFailed(why) = probe_state(&pod_in(
        "Pending",
        waiting("ErrImageNeverPull", "Container image is not present"),
    )) else {
        panic!("not a pull failure");
    };
    assert!(
        why.starts_with("ErrImageNeverPull: Container image"),
        "{why}"
    );
    assert_eq!(
        probe_state(&pod_in("Pending", waiting("ContainerCreating", ""))),
        ProbeState::Running("ContainerCreating".to_owned())
    );
    let mut unscheduled = probe_pod("media", IMAGE, "IfNotPresent", None);
    unscheduled.status = None;
    assert_eq!(
        probe_state(&unscheduled),
        ProbeState::Running("Pending".to_owned())
    );
}

/// The built-ins plus a Python node type, as the example image lists them.
fn image_catalog() -> NodeCatalog {
    let mut catalog = NodeRegistry::with_builtins().catalog();
    catalog.node_types.push(NodeTypeInfo {
        node_type: "python:Gain".to_owned(),
        description: "Scales audio".to_owned(),
        accepts: vec![DataKind::Audio],
        produces: vec![DataKind::Audio],
        params: Vec::new(),
        param_aliases: Vec::new(),
        params_schema: json!({
            "type": "object",
            "properties": {"gain_db": {"type": "number", "minimum": -120, "maximum": 60}},
            "required": [],
            "additionalProperties": false,
        }),
    });
    catalog
}

fn pipeline(node_type: &str, params: &serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "remotemedia.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p", "namespace": "media"},
        "spec": {"manifest": {"version": "v1", "nodes": [
            {"id": "gain", "node_type": node_type, "params": params}
        ]}},
    })
}

#[test]
fn the_catalog_in_a_probe_log_checks_python_params_by_path() {
    let text = serde_json::to_string_pretty(&image_catalog()).expect("json");
    let log = format!("WARN something on stderr {{not json\n{text}\nINFO after\n");
    let (catalog, registry) = read_log(&log).expect("a catalog");
    assert_eq!(catalog, image_catalog());
    let ok = check_pipeline(
        &pipeline("python:Gain", &json!({"gain_db": -6.0})),
        &registry,
    );
    assert!(!ok.has_errors(), "{ok}");
    let bad = check_pipeline(
        &pipeline("python:Gain", &json!({"gain_db": 500})),
        &registry,
    );
    let errors: Vec<_> = bad.errors().collect();
    assert!(
        errors
            .iter()
            .any(|p| p.path == "spec.manifest.nodes[0].params.gain_db"
                && p.node_id.as_deref() == Some("gain")),
        "{errors:?}"
    );
    let unknown = check_pipeline(&pipeline("python:Nope", &json!({})), &registry);
    assert!(
        unknown.errors().any(|p| p.message.contains("python:Nope")),
        "{unknown}"
    );
}

#[test]
fn a_log_without_a_catalog_is_an_error_not_an_empty_catalog() {
    assert!(matches!(
        read_log("Usage: something else\n"),
        Err(ReadError::NoCatalog)
    ));
    assert!(matches!(
        read_log("{\"version\": 99, \"node_types\": []}\n"),
        Err(ReadError::Catalog(CatalogError::Version { found: 99 }))
    ));
}

#[test]
fn the_config_map_keeps_the_catalog_of_its_image_only() {
    let kept = config_map("media", IMAGE, Some("sha256:abc"), &image_catalog());
    let annotations = kept.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get(IMAGE_ID_ANNOTATION).map(String::as_str),
        Some("sha256:abc")
    );
    let registry = from_config_map(&kept, IMAGE)
        .expect("this image's")
        .expect("reads back");
    assert!(registry.get("python:Gain").is_some());
    assert!(from_config_map(&kept, "localhost/other:1").is_none());
}
