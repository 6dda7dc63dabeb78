//! The committed CRD must be exactly what the generator prints; regenerate with
//! `make generate` (crdgen into `crds/` and the chart's `files/crds/`).

use kube::CustomResourceExt;
use remotemedia_operator::crd::Pipeline;

const COMMITTED: &str = include_str!("../../crds/pipelines.remotemedia.dev.yaml");
const IN_CHART: &str =
    include_str!("../../charts/remotemedia-operator/files/crds/pipelines.remotemedia.dev.yaml");

#[test]
fn committed_crd_matches_the_generator() {
    assert!(
        COMMITTED == remotemedia_operator::crd_yaml(),
        "crds/pipelines.remotemedia.dev.yaml is stale: run \
         `cargo run -p remotemedia-operator --bin crdgen > crds/pipelines.remotemedia.dev.yaml`"
    );
    assert!(
        IN_CHART == COMMITTED,
        "the chart's copy of the CRD differs from crds/: run `make generate`"
    );
}

#[test]
fn crd_stays_small_enough_for_client_side_apply() {
    // kubectl's client-side apply stores the object in an annotation limited to 256 KiB.
    assert!(
        COMMITTED.len() < 64 * 1024,
        "CRD is {} bytes",
        COMMITTED.len()
    );
}

#[test]
fn crd_has_the_subresources_columns_and_names_users_rely_on() {
    let crd = Pipeline::crd();
    assert_eq!(crd.spec.names.short_names, Some(vec!["pl".to_owned()]));
    let version = &crd.spec.versions[0];
    let subresources = version.subresources.as_ref().expect("subresources");
    assert!(subresources.status.is_some());
    let scale = subresources.scale.as_ref().expect("scale subresource");
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(
        scale.label_selector_path.as_deref(),
        Some(".status.selector")
    );
    let columns: Vec<_> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    for wanted in ["Ready", "Replicas", "Endpoint", "Age"] {
        assert!(columns.contains(&wanted), "{columns:?}");
    }
}
