//! The validating admission webhook: runs runtime-core's validator on every Pipeline create and
//! update, so `kubectl apply` (and `--dry-run=server`) refuses an invalid manifest at once,
//! naming each problem's field path and node.

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
    metrics: Arc<Metrics>,
}

/// The webhook's HTTP routes (served over TLS by the caller).
pub fn router(metrics: Arc<Metrics>) -> Router {
    let state = Arc::new(WebhookState {
        registry: NodeRegistry::with_builtins(),
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
            let response = review(&request, &state.registry);
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
