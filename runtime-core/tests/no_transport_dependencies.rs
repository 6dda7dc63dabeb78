//! The founding rule: runtime-core knows no transport. `cargo tree` must not list any of them,
//! with every feature on. And the operator, which only validates manifests and renders the
//! pod contract, carries no IPC stack: no iceoryx2 in its tree.

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
    let crates = tree("remotemedia-runtime-core", &["--all-features"]);
    let tree = crates.join("\n");
    assert!(
        crates.iter().any(|c| c == "rubato"),
        "cargo tree output looks wrong:\n{tree}"
    );
    let bad: Vec<&String> = crates
        .iter()
        .filter(|c| {
            FORBIDDEN
                .iter()
                .any(|f| c.as_str() == *f || c.starts_with(&format!("{f}-")))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "runtime-core depends on transport crates: {bad:?}"
    );
}

/// The crates (one per line, without the tree's prefix) `package` depends on, with `args`.
fn tree(package: &str, args: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_operator_carries_no_iceoryx2() {
    let operator = tree("remotemedia-operator", &[]);
    assert!(
        operator.iter().any(|c| c == "remotemedia-runtime-core"),
        "cargo tree output looks wrong: {operator:?}"
    );
    let ipc: Vec<&String> = operator
        .iter()
        .filter(|c| c.starts_with("iceoryx2"))
        .collect();
    assert!(ipc.is_empty(), "the operator depends on {ipc:?}");
    // The check can fail: the servers, which need the pod link, do carry it.
    assert!(
        tree("remotemedia-grpc", &[])
            .iter()
            .any(|c| c == "iceoryx2")
    );
}
