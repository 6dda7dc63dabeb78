//! Any text as a YAML manifest: accepted, or refused with problems; never a panic, a stack
//! overflow or a hang (the size and nesting limits come first). What is accepted stays valid
//! and equal when written as JSON and read back, as the operator does for the worker's
//! ConfigMap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::nodes::NodeRegistry;

/// Built once: the node types do not change between inputs.
static REGISTRY: std::sync::LazyLock<NodeRegistry> =
    std::sync::LazyLock::new(NodeRegistry::with_builtins);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let registry = &*REGISTRY;
    let Ok(manifest) = Manifest::from_text(text, Format::Yaml, registry) else {
        return;
    };
    let json = serde_json::to_string(manifest.as_ref()).expect("a manifest serializes");
    let again = Manifest::from_text(&json, Format::Json, registry)
        .unwrap_or_else(|report| panic!("{json}: {report}"));
    assert_eq!(manifest, again, "{json}");
});
