//! Installing the operator's chart, and the suite's namespace.

use crate::support::{OPERATOR_NS, RELEASE, helm, kubectl, output, repo, run};

/// `helm upgrade --install` of charts/remotemedia-operator with its defaults (images
/// localhost/*:<appVersion>, what kind-tests/images.sh loads), waiting until it is ready.
pub fn operator_chart() {
    adopt_existing_crd();
    run(helm()
        .args(["upgrade", "--install", RELEASE])
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
    pub fn create(name: &str) -> Self {
        run(kubectl().args(["create", "namespace", name]));
        Self {
            name: name.to_owned(),
        }
    }
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
