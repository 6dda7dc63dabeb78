//! Manifest validation shared by the admission webhook and the controller: runtime-core's own
//! validator, run on the whole resource so every problem's path starts with `spec.manifest`.

use remotemedia_runtime_core::manifest::{Problem, ProblemKind, ValidationReport, check_value};
use remotemedia_runtime_core::nodes::NodeRegistry;
use remotemedia_runtime_core::nodes::PYTHON_NODE_TYPE_PREFIX;
use remotemedia_runtime_core::pod;
use serde_json::Value;

use crate::crd::DEFAULT_SHARED_MEMORY;

const SHARED_MEMORY_PATH: &str = "spec.runtime.sharedMemory";

/// Validates a `Pipeline` resource given as JSON (apiVersion, kind, metadata, spec): its
/// manifest, and whether the pod's shared memory holds the links it needs.
#[must_use]
pub fn check_pipeline(resource: &Value, registry: &NodeRegistry) -> ValidationReport {
    let mut report = check_value(resource, registry).report;
    if let Some(problem) = resource.get("spec").and_then(shared_memory_problem) {
        report.problems.push(problem);
    }
    report
}

/// `/dev/shm` (`spec.runtime.sharedMemory`) against what the pod link needs at worst for the
/// enabled transports and the manifest's Python nodes: a pod short of it dies of SIGBUS when a
/// pipe grows, so it is refused here instead.
fn shared_memory_problem(spec: &Value) -> Option<Problem> {
    let text = spec
        .pointer("/runtime/sharedMemory")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_SHARED_MEMORY);
    let enabled = |transport: &str, default: bool| {
        spec.pointer(&format!("/transports/{transport}/enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(default)
    };
    let transports = u64::from(enabled("grpc", true)) + u64::from(enabled("webrtc", false));
    let python_nodes = spec
        .pointer("/manifest/nodes")
        .and_then(Value::as_array)
        .map_or(0, |nodes| {
            nodes
                .iter()
                .filter_map(|n| n.get("node_type").and_then(Value::as_str))
                .filter(|t| t.starts_with(PYTHON_NODE_TYPE_PREFIX))
                .count() as u64
        });
    let need = pod::shared_memory_needed(transports, python_nodes);
    let have = match memory_bytes(text) {
        Ok(bytes) => bytes,
        Err(why) => {
            return Some(Problem::error(
                ProblemKind::WrongType,
                SHARED_MEMORY_PATH,
                format!("{text:?} is not a memory size: {why}"),
            ));
        }
    };
    (have < need).then(|| {
        Problem::error(
            ProblemKind::InvalidParam,
            SHARED_MEMORY_PATH,
            format!(
                "{text} is less than the {} MiB the pod link needs at worst for {transports} \
                 transport(s) and {python_nodes} Python node(s) (messages up to 512 KiB, 64 \
                 per transport pipe, 8 per node pipe)",
                need.div_ceil(1 << 20)
            ),
        )
    })
}

/// Bytes of a Kubernetes memory quantity: an integer or decimal number with a binary (`Ki`,
/// `Mi`, `Gi`, `Ti`) or decimal (`k`, `M`, `G`, `T`) suffix, or none. Written here because
/// `Quantity` is a string in k8s-openapi and memory sizes need only this part of the format
/// (no exponents, no milli-units: refused with the reason).
fn memory_bytes(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let scale: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        other => {
            return Err(format!(
                "unsupported suffix {other:?} (use Ki, Mi, Gi, Ti, k, M, G or T)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    if !value.is_finite() || value < 0.0 {
        return Err("not a size".to_owned());
    }
    // Memory sizes are far below 2^53 bytes, where f64 is exact for integers.
    Ok((value * scale as f64).round() as u64)
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

    #[test]
    fn memory_sizes_read_as_kubernetes_writes_them() {
        assert_eq!(memory_bytes("256Mi"), Ok(256 << 20));
        assert_eq!(memory_bytes("1.5Gi"), Ok(3 << 29));
        assert_eq!(memory_bytes("500M"), Ok(500_000_000));
        assert_eq!(memory_bytes("1048576"), Ok(1 << 20));
        assert!(memory_bytes("1e9").unwrap_err().contains("suffix"));
        assert!(memory_bytes("lots").unwrap_err().contains("suffix"));
    }

    #[test]
    fn shared_memory_too_small_for_the_links_is_an_error_naming_the_field() {
        let registry = NodeRegistry::with_builtins();
        let manifest = json!({"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]});
        let with = |shm: Option<&str>, webrtc: bool| {
            let mut resource = pipeline(&manifest);
            resource["spec"]["transports"] = json!({"webrtc": {"enabled": webrtc}});
            if let Some(shm) = shm {
                resource["spec"]["runtime"] = json!({"sharedMemory": shm});
            }
            check_pipeline(&resource, &registry)
        };
        // The default 256Mi holds both transports' links (132 MiB at worst).
        assert!(!with(None, true).has_errors());
        let small = with(Some("64Mi"), true);
        let problem = small.errors().next().expect("an error");
        assert_eq!(problem.path, "spec.runtime.sharedMemory");
        assert!(
            problem.message.contains("132 MiB") && problem.message.contains("2 transport(s)"),
            "{}",
            problem.message
        );
        // One transport needs half of that.
        assert!(!with(Some("80Mi"), false).has_errors());
        let garbled = with(Some("64 MB"), false);
        assert!(
            garbled
                .errors()
                .next()
                .unwrap()
                .message
                .contains("not a memory size")
        );
    }

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
