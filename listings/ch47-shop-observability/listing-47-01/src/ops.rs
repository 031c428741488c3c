//! Operations: what the people who run the shop need from it. Metrics for
//! Prometheus, health probes for the orchestrator, a request id on every
//! request and in every log line about it, and a graceful shutdown.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use composable_rust::ProjectionManager;
use composable_rust::health::{HealthRegistry, HealthReport, ProjectionCheck};
use composable_rust::metrics::{DURATION_BUCKETS, describe};
use composable_rust::postgres::{PostgresEventStore, PostgresHealthCheck, PostgresProjectionStore};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::history::OrderHistory;

// ANCHOR: metrics
/// Installs the Prometheus recorder for the whole process, and returns the
/// handle that renders what it recorded. Call it first: whatever the
/// framework reports before a recorder exists is lost.
pub fn install_metrics() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        // Durations as histograms with buckets, which Prometheus can add up
        // across processes (the default, a summary, cannot be).
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)?
        .install_recorder()?;
    // A `# HELP` line and a unit for every metric of the framework.
    describe();
    Ok(handle)
}
// ANCHOR_END: metrics

// ANCHOR: health
/// The probes of the HTTP process. Live: the order history's manager has
/// not stopped. Ready: the database answers, and the order history is at
/// most `max_behind` events behind the store.
pub fn health(
    events: &PostgresEventStore,
    history: &ProjectionManager<OrderHistory<PostgresProjectionStore>>,
    max_behind: u64,
) -> HealthRegistry {
    HealthRegistry::new()
        .with_liveness(ProjectionCheck::alive(history.clone()))
        .with_readiness(PostgresHealthCheck::new(events.pool().clone()))
        .with_readiness(ProjectionCheck::lag(history.clone(), max_behind))
}

/// What the operations routes share.
#[derive(Debug, Clone)]
pub struct Ops {
    /// Renders the metrics.
    pub metrics: PrometheusHandle,
    /// Answers the probes.
    pub health: Arc<HealthRegistry>,
}

/// `GET /metrics`, `GET /health` and `GET /ready`.
pub fn router(ops: Ops) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(live))
        .route("/ready", get(ready))
        .with_state(ops)
}

async fn metrics(State(ops): State<Ops>) -> String {
    ops.metrics.render()
}

async fn live(State(ops): State<Ops>) -> Response {
    probe(ops.health.liveness().await)
}

async fn ready(State(ops): State<Ops>) -> Response {
    probe(ops.health.readiness().await)
}

/// `200` when every check passes, `503` otherwise; the body says which
/// check failed and why.
fn probe(report: HealthReport) -> Response {
    let status =
        StatusCode::from_u16(report.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let json = [(header::CONTENT_TYPE, "application/json")];
    (status, json, report.to_json()).into_response()
}
// ANCHOR_END: health

// ANCHOR: tracing
/// Writes the log to standard error, from `info` up.
pub fn init_tracing() {
    // Fails only when a subscriber is already installed (in tests): keep it.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Gives every request an `x-request-id` (the client's, or a new UUID),
/// logs each request in a span that carries it, and returns it in the
/// response, so a customer's report can be matched with the log.
pub fn with_request_ids(app: Router) -> Router {
    // The last layer added runs first: set the id, then trace, then copy
    // the id to the response.
    app.layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

fn request_span(request: &Request<Body>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    )
}
// ANCHOR_END: tracing

// ANCHOR: shutdown
/// Completes when the process is asked to stop (Ctrl-C, or `SIGINT`).
pub async fn ctrl_c() {
    // An error means no handler could be installed: stop at once.
    let _ = tokio::signal::ctrl_c().await;
}
// ANCHOR_END: shutdown
