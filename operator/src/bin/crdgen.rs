//! Prints the Pipeline CRD as YAML (`crds/pipelines.remotemedia.dev.yaml` is its output).

fn main() {
    print!("{}", remotemedia_operator::crd_yaml());
}
