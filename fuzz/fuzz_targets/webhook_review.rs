//! Any bytes as the body the API server posts to the validating webhook: an AdmissionReview
//! that decodes is answered (allowed, or denied with the problems), never a panic.
#![no_main]

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use libfuzzer_sys::fuzz_target;
use remotemedia_operator::webhook::review;
use remotemedia_runtime_core::nodes::NodeRegistry;

static REGISTRY: std::sync::LazyLock<NodeRegistry> =
    std::sync::LazyLock::new(NodeRegistry::with_builtins);

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<AdmissionReview<DynamicObject>>(data) else {
        return;
    };
    let request: Result<AdmissionRequest<DynamicObject>, _> = body.try_into();
    let Ok(request) = request else {
        return;
    };
    let response = review(&request, &REGISTRY, "runtime:default");
    assert_eq!(response.uid, request.uid);
});
