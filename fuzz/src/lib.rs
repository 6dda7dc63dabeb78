//! What the fuzz targets share.

use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::nodes::NodeRegistry;

/// Built once: the node types do not change between inputs.
static REGISTRY: std::sync::LazyLock<NodeRegistry> =
    std::sync::LazyLock::new(NodeRegistry::with_builtins);

/// `data` as a manifest in `format`: accepted or refused with problems, never a panic; what is
/// accepted stays valid and equal when written as JSON and read back, as the operator does
/// for the worker's ConfigMap.
pub fn manifest_round_trip(data: &[u8], format: Format) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = Manifest::from_text(text, format, &REGISTRY) else {
        return;
    };
    let json = serde_json::to_string(manifest.as_ref()).expect("a manifest serializes");
    let again = Manifest::from_text(&json, Format::Json, &REGISTRY)
        .unwrap_or_else(|report| panic!("{json}: {report}"));
    assert_eq!(manifest, again, "{json}");
}
