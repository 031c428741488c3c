//! The operations side on PostgreSQL (`DATABASE_URL`, a schema per test):
//! the probes, the metrics, the request id, and a graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::shutdown::{RunnerOutcome, ShutdownGroup};
use composable_rust::uuid::Uuid;
use composable_rust::{Position, ProjectionManager};
use composable_rust_testing::fixtures::TestSchema;
use metrics_exporter_prometheus::PrometheusBuilder;
use storefront::history::OrderHistory;
use storefront::ops::{self, Ops};
use storefront::order::Line;
use storefront::shop::Shop;
use tower::ServiceExt;

type History = ProjectionManager<OrderHistory<PostgresProjectionStore>>;

/// The event store, with one order placed, and the history's manager
/// (not started), on a fresh schema; the guard comes last.
async fn shop_with_an_order() -> (PostgresEventStore, History, TestSchema) {
    let schema = TestSchema::new();
    let events = PostgresEventStore::connect(schema.url())
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();
    events.migrate().await.unwrap();
    let read_model = PostgresProjectionStore::connect(schema.url())
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();
    read_model.migrate().await.unwrap();
    let history = ProjectionManager::new(OrderHistory::new(), Arc::new(read_model), events.clone());
    let lines = vec![Line {
        sku: "mug".into(),
        quantity: 1,
    }];
    Shop::new(events.clone())
        .place_order(Uuid::new_v4(), "ada@example.com", lines)
        .await
        .unwrap();
    (events, history, schema)
}

/// The operations routes, with a metrics handle of the test's own (not
/// installed for the process) and the probes of `ops::health`.
fn ops_app(events: &PostgresEventStore, history: &History, max_behind: u64) -> Router {
    let metrics = PrometheusBuilder::new().build_recorder().handle();
    let health = Arc::new(ops::health(events, history, max_behind));
    ops::with_request_ids(ops::router(Ops { metrics, health }))
}

async fn get(app: &Router, path: &str) -> (StatusCode, String) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_shop_is_ready_once_the_history_has_caught_up() {
    let (events, history, _schema) = shop_with_an_order().await;
    let app = ops_app(&events, &history, 0);

    // Alive, but one event behind: not ready.
    assert_eq!(get(&app, "/health").await.0, StatusCode::OK);
    let (status, body) = get(&app, "/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("projection:order-history"), "{body}");

    history.catch_up().await.unwrap();
    let (status, body) = get(&app, "/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn metrics_show_how_far_behind_the_history_is() {
    // The one test of this file that installs the process's recorder.
    let metrics = ops::install_metrics().unwrap();
    let (events, history, _schema) = shop_with_an_order().await;
    history.catch_up().await.unwrap();

    let health = Arc::new(ops::health(&events, &history, 0));
    let app = ops::router(Ops { metrics, health });
    let (status, body) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("composable_projection_events_behind{projection=\"order-history\"} 0"),
        "{body}"
    );
    assert!(
        body.contains("composable_event_store_events_appended_total"),
        "{body}"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let (events, history, _schema) = shop_with_an_order().await;
    let app = ops_app(&events, &history, 100);

    let request = Request::get("/health").body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(Uuid::parse_str(id).is_ok(), "a new id is a UUID: {id}");

    // A client's own id is kept, so both sides log the same one.
    let request = Request::get("/health")
        .header("x-request-id", "support-ticket-42")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "support-ticket-42");
}

#[tokio::test]
async fn a_shutdown_lets_the_history_finish_and_stop() {
    let (_events, history, _schema) = shop_with_an_order().await;
    let mut runners = ShutdownGroup::new();
    runners.add("projection:order-history", history.clone());
    let running = history.start();
    // Wait (with a deadline) until the manager has applied the order.
    let mut applied = history.subscribe_position();
    let caught_up = applied.wait_for(|position| *position > Position::START);
    tokio::time::timeout(Duration::from_secs(5), caught_up)
        .await
        .expect("the history applies the order within 5 s")
        .unwrap();

    let report = runners.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(report.runners[0].outcome, RunnerOutcome::Finished);
    running.await.unwrap().unwrap();
}
