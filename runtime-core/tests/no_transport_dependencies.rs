//! The founding rule: runtime-core knows no transport. `cargo tree` must not list any of them,
//! with every feature on.

use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "tonic",
    "prost",
    "tower",
    "hyper",
    "pyo3",
    "webrtc",
    "str0m",
    "kube",
    "k8s-openapi",
];

#[test]
fn runtime_core_depends_on_no_transport_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "remotemedia-runtime-core",
            "-e",
            "normal",
            "--all-features",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"rubato"),
        "cargo tree output looks wrong:\n{tree}"
    );
    let bad: Vec<&&str> = crates
        .iter()
        .filter(|c| {
            FORBIDDEN
                .iter()
                .any(|f| *c == f || c.starts_with(&format!("{f}-")))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "runtime-core depends on transport crates: {bad:?}"
    );
}
