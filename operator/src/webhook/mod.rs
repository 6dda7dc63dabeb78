//! The validating admission webhook: runs runtime-core's validator on every Pipeline create and
//! update, so `kubectl apply` (and `--dry-run=server`) refuses an invalid manifest at once,
//! naming each problem's field path and node. That is for Pipelines on the default runtime
//! image, whose node types are this build's built-ins. A Pipeline naming another image is
//! admitted with a warning: its node types are the image's own, which the controller reads
//! from the image (see [`crate::catalog`]) and checks the manifest against, reporting on the
//! `ManifestValid` condition. Admission stays fast and never waits for an image pull.

mod certs;

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use remotemedia_runtime_core::nodes::NodeRegistry;

pub use certs::{
    CertError, ServingCert, ensure_serving_cert, generate as generate_serving_cert,
    inject_ca_bundle,
};

use crate::catalog::{self, Source};
use crate::metrics::Metrics;
use crate::validation::{check_pipeline, summarize_errors};

/// Path the webhook is served on.
pub const VALIDATE_PATH: &str = "/validate-pipeline";
/// Most problems listed in one denial (the rest are counted).
const MAX_LISTED: usize = 10;

/// Decides one admission request. Pure: the HTTP layer only decodes and encodes.
#[must_use]
pub fn review(
    request: &AdmissionRequest<DynamicObject>,
    registry: &NodeRegistry,
    default_image: &str,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    if matches!(request.operation, Operation::Delete | Operation::Connect) {
        return response;
    }
    let Some(object) = &request.object else {
        return response.deny("the request carries no object");
    };
    let value = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => return response.deny(format!("the object is not valid JSON: {e}")),
    };
    let image = value
        .pointer("/spec/runtime/image")
        .and_then(serde_json::Value::as_str);
    if let Source::Image(image) = catalog::source(image, default_image) {
        let mut response = response;
        response.warnings = Some(vec![format!(
            "the manifest is checked against the node types of image {image} once the operator \
             has read them: see the Pipeline's ManifestValid condition"
        )]);
        return response;
    }
    let report = check_pipeline(&value, registry);
    let warnings: Vec<String> = report.warnings().map(ToString::to_string).collect();
    let mut response = if report.has_errors() {
        response.deny(summarize_errors(&report, MAX_LISTED))
    } else {
        response
    };
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    response
}

struct WebhookState {
    registry: NodeRegistry,
    default_image: String,
    metrics: Arc<Metrics>,
}

/// The webhook's HTTP routes (served over TLS by the caller); `default_image` is the runtime
/// image of Pipelines that name none.
pub fn router(metrics: Arc<Metrics>, default_image: String) -> Router {
    let state = Arc::new(WebhookState {
        registry: NodeRegistry::with_builtins(),
        default_image,
        metrics,
    });
    Router::new()
        .route(VALIDATE_PATH, post(validate))
        .with_state(state)
}

async fn validate(
    State(state): State<Arc<WebhookState>>,
    Json(review_body): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request: Result<AdmissionRequest<DynamicObject>, _> = review_body.try_into();
    let response = match request {
        Ok(request) => {
            let response = review(&request, &state.registry, &state.default_image);
            tracing::info!(
                name = %request.name,
                namespace = request.namespace.as_deref().unwrap_or(""),
                allowed = response.allowed,
                "admission review"
            );
            response
        }
        Err(e) => AdmissionResponse::invalid(format!("not an AdmissionReview request: {e}")),
    };
    state.metrics.admission(response.allowed);
    Json(response.into_review())
}

#[cfg(test)]
mod tests;
