//! The end-to-end suite lives in `tests/e2e/` and runs with `--features e2e` against
//! `$KUBECONFIG`: a cluster with a node (`kind-tests/cluster.sh up full`, or kind) and this
//! checkout's images loaded (`kind-tests/images.sh load`). `make test` does all of it.
//!
//! This library is empty on purpose: Cargo needs a target to hang the suite on.
