//! Installing the operator's chart, and the suite's namespace.

use crate::support::{OPERATOR_NS, RELEASE, helm, kubectl, output, repo, run};

/// `helm upgrade --install` of charts/remotemedia-operator with its defaults (images
/// localhost/*:<appVersion>, what kind-tests/images.sh loads), waiting until it is ready.
pub fn operator_chart() {
    adopt_existing_crd();
    // The operator runs under the restricted Pod Security Standard too.
    let exists = output(kubectl().args(["get", "namespace", OPERATOR_NS]))
        .status
        .success();
    if !exists {
        run(kubectl().args(["create", "namespace", OPERATOR_NS]));
    }
    enforce_restricted(OPERATOR_NS);
    run(helm()
        // The chart's defaults, whatever a run before this one left set (helm 3 reuses a
        // release's values when given none).
        .args(["upgrade", "--install", "--reset-values", RELEASE])
        .arg(repo().join("charts/remotemedia-operator"))
        .args([
            "--namespace",
            OPERATOR_NS,
            "--create-namespace",
            "--wait",
            "--timeout",
            "3m",
        ]));
    // Ready means serving: the admission webhook answers (it is what refuses bad Pipelines).
    run(kubectl().args([
        "wait",
        "--for=condition=Available",
        "--timeout=180s",
        "-n",
        OPERATOR_NS,
        "deployment",
        "-l",
        &format!("app.kubernetes.io/instance={RELEASE}"),
    ]));
}

/// A CRD applied before (the operator's own tests install it without Helm on the same
/// cluster) is handed to the release the way Helm documents for adopting resources: its
/// ownership label and annotations. Helm then updates it to the chart's version.
fn adopt_existing_crd() {
    const CRD: &str = "customresourcedefinition/pipelines.remotemedia.dev";
    if !output(kubectl().args(["get", CRD])).status.success() {
        return;
    }
    run(kubectl().args([
        "label",
        "--overwrite",
        CRD,
        "app.kubernetes.io/managed-by=Helm",
    ]));
    run(kubectl().args([
        "annotate",
        "--overwrite",
        CRD,
        &format!("meta.helm.sh/release-name={RELEASE}"),
        &format!("meta.helm.sh/release-namespace={OPERATOR_NS}"),
    ]));
}

pub fn uninstall() {
    run(helm().args(["uninstall", RELEASE, "--namespace", OPERATOR_NS, "--wait"]));
}

/// A namespace for the suite's Pipelines, deleted (with everything in it) on drop.
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    /// Creates it enforcing the restricted Pod Security Standard, as a hardened cluster's
    /// namespaces do: every pod the operator makes there (workers with their gRPC and WebRTC
    /// sidecars, catalog probes) must be admitted under it.
    pub fn create(name: &str) -> Self {
        run(kubectl().args(["create", "namespace", name]));
        enforce_restricted(name);
        Self {
            name: name.to_owned(),
        }
    }
}

/// Labels `namespace` to enforce the restricted Pod Security Standard and checks that the
/// apiserver does: a privileged pod is refused there (server-side dry run), so a suite that
/// passes in it proves the operator's pods comply rather than that nothing was checked.
fn enforce_restricted(namespace: &str) {
    run(kubectl().args([
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "--overwrite",
    ]));
    let out = output(kubectl().args([
        "run",
        "pod-security-check",
        "-n",
        namespace,
        "--image=localhost/remotemedia-runtime:0.1.0",
        "--restart=Never",
        "--privileged",
        "--dry-run=server",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("violates PodSecurity"),
        "a privileged pod was not refused in {namespace}: {stderr}"
    );
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let out = output(kubectl().args([
            "delete",
            "namespace",
            &self.name,
            "--wait=true",
            "--timeout=120s",
        ]));
        if !out.status.success() {
            eprintln!(
                "deleting namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
