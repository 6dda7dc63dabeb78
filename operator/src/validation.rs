//! Manifest validation shared by the admission webhook and the controller: runtime-core's own
//! validator, run on the whole resource so every problem's path starts with `spec.manifest`.

use remotemedia_runtime_core::manifest::{ValidationReport, check_value};
use remotemedia_runtime_core::nodes::NodeRegistry;
use serde_json::Value;

/// Validates a `Pipeline` resource given as JSON (apiVersion, kind, metadata, spec).
#[must_use]
pub fn check_pipeline(resource: &Value, registry: &NodeRegistry) -> ValidationReport {
    check_value(resource, registry).report
}

/// One line naming the first `max` errors and how many more there are, for a condition
/// message, an Event note or an admission denial.
#[must_use]
pub fn summarize_errors(report: &ValidationReport, max: usize) -> String {
    let errors: Vec<String> = report.errors().map(ToString::to_string).collect();
    let shown = errors.len().min(max);
    let mut text = format!(
        "{} error{} in the manifest: {}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
        errors[..shown].join("; ")
    );
    if errors.len() > shown {
        text.push_str(&format!("; and {} more", errors.len() - shown));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pipeline(manifest: &Value) -> Value {
        json!({
            "apiVersion": "remotemedia.dev/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"manifest": manifest, "replicas": 1},
        })
    }

    #[test]
    fn problems_are_reported_under_spec_manifest_with_node_ids() {
        let registry = NodeRegistry::with_builtins();
        let report = check_pipeline(
            &pipeline(&json!({
                "version": "v1",
                "nodes": [
                    {"id": "a", "node_type": "PassThrough"},
                    {"id": "b", "node_type": "FastResampleNode", "params": {"target_rate": "fast"}},
                ],
                "connections": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}],
            })),
            &registry,
        );
        let errors: Vec<_> = report.errors().collect();
        assert!(
            errors.iter().all(|p| p.path.starts_with("spec.manifest")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|p| p.path == "spec.manifest.nodes[1].params.target_rate"
                    && p.node_id.as_deref() == Some("b")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|p| p.message.contains("cycle")),
            "{errors:?}"
        );
        let summary = summarize_errors(&report, 1);
        assert!(summary.starts_with(&format!("{} errors in the manifest: ", errors.len())));
        assert!(
            summary.ends_with(&format!("; and {} more", errors.len() - 1)),
            "{summary}"
        );
    }

    #[test]
    fn a_valid_pipeline_has_no_errors() {
        let registry = NodeRegistry::with_builtins();
        let report = check_pipeline(
            &pipeline(
                &json!({"version": "v1", "nodes": [{"id": "a", "node_type": "AudioLevelNode"}]}),
            ),
            &registry,
        );
        assert!(!report.has_errors(), "{report}");
    }
}
