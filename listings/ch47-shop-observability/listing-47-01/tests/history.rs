//! The order history: the projection fed events in memory by the test
//! harness, then the whole path on PostgreSQL (`DATABASE_URL`): an order
//! placed over HTTP, applied by the manager, read back over HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::uuid::Uuid;
use composable_rust::{InMemoryProjectionStore, ProjectionManager};
use composable_rust_testing::fixtures::TestSchema;
use serde_json::{Value, json};
use storefront::api;
use storefront::history::{OrderHistory, PastOrder, history_key};
use storefront::order::{OrderEvent, SoldLine, Status};
use storefront::shop::Shop;
use tower::ServiceExt;

fn placed(customer: &str, quantity: u32) -> OrderEvent {
    OrderEvent::Placed {
        customer: customer.into(),
        lines: vec![SoldLine {
            sku: "mug".into(),
            quantity,
            unit_price: 1_200,
        }],
        total: 1_200 * u64::from(quantity),
    }
}

#[tokio::test]
async fn lists_each_customers_orders_newest_first() {
    let (first, second, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut harness = ProjectionTestHarness::new(OrderHistory::<InMemoryProjectionStore>::new());
    harness
        .given_events(
            &format!("order-{first}"),
            [placed("ada", 2), OrderEvent::Paid { amount: 2_400 }],
        )
        .await
        .given_events(&format!("order-{other}"), [placed("grace", 1)])
        .await
        .given_events(
            &format!("order-{second}"),
            [
                placed("ada", 1),
                OrderEvent::Cancelled {
                    reason: "changed my mind".into(),
                },
            ],
        )
        .await;

    let ada: Vec<PastOrder> = harness.get_json(&history_key("ada")).await.unwrap();
    let summary: Vec<_> = ada.iter().map(|order| (order.id, order.status)).collect();
    assert_eq!(
        summary,
        [(second, Status::Cancelled), (first, Status::Paid)]
    );
    assert_eq!((ada[1].total, ada[1].items), (2_400, 2));
    let grace: Vec<PastOrder> = harness.get_json(&history_key("grace")).await.unwrap();
    assert_eq!(grace.len(), 1);

    harness.assert_rebuild_matches().await;
    harness.assert_idempotent().await;
}

/// The API and the history's manager on a fresh schema (the guard comes
/// last, so it is dropped after the connections).
async fn service() -> (
    Router,
    ProjectionManager<OrderHistory<PostgresProjectionStore>>,
    TestSchema,
) {
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
    let read_model = Arc::new(read_model);
    let history =
        ProjectionManager::new(OrderHistory::new(), Arc::clone(&read_model), events.clone());
    let app = api::router(Arc::new(Shop::new(events))).merge(api::history_router(read_model));
    (app, history, schema)
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

fn place(customer: &str, quantity: u32) -> Request<Body> {
    let body = json!({"customer": customer, "lines": [{"sku": "tee", "quantity": quantity}]});
    Request::post("/orders")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn history_of(customer: &str) -> Request<Body> {
    Request::get(format!("/customers/{customer}/orders"))
        .body(Body::empty())
        .unwrap()
}

/// Reads `customer`'s history until it lists `count` orders. No sleeping:
/// it reads again each time the projection commits, and fails after five
/// seconds.
async fn history_with(
    app: &Router,
    history: &ProjectionManager<OrderHistory<PostgresProjectionStore>>,
    customer: &str,
    count: usize,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut applied = history.subscribe_position();
    loop {
        let (status, body) = send(app, history_of(customer)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["orders"].as_array().map(Vec::len) == Some(count) {
            return body;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, applied.changed())
            .await
            .unwrap_or_else(|_| panic!("the history still shows {body} after 5 s"))
            .unwrap();
    }
}

#[tokio::test]
async fn an_order_placed_over_http_shows_in_the_history() {
    let (app, history, _schema) = service().await;
    let running = history.start();

    let (status, first) = send(&app, place("ada@example.com", 1)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, second) = send(&app, place("ada@example.com", 3)).await;
    send(&app, place("grace@example.com", 1)).await;

    let body = history_with(&app, &history, "ada@example.com", 2).await;
    assert_eq!(body["customer"], "ada@example.com");
    assert_eq!(body["orders"][0]["id"], second["id"]);
    assert_eq!(body["orders"][0]["items"], 3);
    assert_eq!(body["orders"][1]["id"], first["id"]);
    assert_eq!(body["orders"][1]["status"], "placed");

    history.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_customer_without_orders_has_an_empty_history() {
    let (app, _history, _schema) = service().await;
    let (status, body) = send(&app, history_of("nobody@example.com")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"customer": "nobody@example.com", "orders": []})
    );

    let too_long = "x".repeat(201);
    let (status, body) = send(&app, history_of(&too_long)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("STORE-E0010"))
    );
}
