//! The operational routes: `/health` (liveness), `/ready` (readiness),
//! both from the framework's `HealthRegistry`; `/metrics` (Prometheus
//! text); `/openapi.json`. They are outside the overload limit, so a probe
//! still answers when the API sheds load.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use composable_rust::health::{HealthReport, Probe};
use utoipa::OpenApi;

use super::AppState;
use super::openapi::ApiDoc;

/// Liveness: is the process able to make progress (restart it if not)?
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "alive"), (status = 503, description = "restart me")))]
pub async fn health(State(state): State<AppState>) -> Response {
    report(state.health.report(Probe::Liveness).await)
}

/// Readiness: can it serve now (PostgreSQL, Redis and the bus answer, the
/// read models are not far behind)?
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn ready(State(state): State<AppState>) -> Response {
    report(state.health.report(Probe::Readiness).await)
}

fn report(report: HealthReport) -> Response {
    let status =
        StatusCode::from_u16(report.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        report.to_json(),
    )
        .into_response()
}

/// The Prometheus exposition (404 when no recorder was installed).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 404, description = "no recorder installed")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no metrics recorder is installed\n").into_response(),
    }
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "the OpenAPI document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
