//! The HTTP API, request by request. Each request goes through the whole
//! router (extractors, body limit, handlers, error responses) with tower's
//! `oneshot`, without a socket; the shop underneath is on PostgreSQL
//! (`DATABASE_URL`), in a schema of the test's own.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use composable_rust::postgres::PostgresEventStore;
use composable_rust_testing::fixtures::TestSchema;
use serde_json::{Value, json};
use storefront::api;
use storefront::shop::Shop;
use tower::ServiceExt;

/// The API on a shop in a fresh schema (the guard comes last, so it is
/// dropped after the shop's connections).
async fn app() -> (Router, TestSchema) {
    let schema = TestSchema::new();
    let events = PostgresEventStore::connect(schema.url())
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();
    events.migrate().await.unwrap();
    (api::router(Arc::new(Shop::new(events))), schema)
}

/// Sends one request and returns the status and the JSON body.
async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

fn post(body: &Value, key: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/orders").header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.body(Body::from(body.to_string())).unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn two_mugs() -> Value {
    json!({"customer": "ada@example.com", "lines": [{"sku": "mug", "quantity": 2}]})
}

#[tokio::test]
async fn an_order_is_placed_and_read_back() {
    let (app, _schema) = app().await;
    let (status, placed) = send(&app, post(&two_mugs(), None)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(placed["status"], "placed");
    assert_eq!(placed["total"], 2_400);

    let id = placed["id"].as_str().unwrap();
    let (status, read) = send(&app, get(&format!("/orders/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, placed);
}

#[tokio::test]
async fn a_retry_with_the_same_key_returns_the_first_order() {
    let (app, _schema) = app().await;
    let (status, first) = send(&app, post(&two_mugs(), Some("checkout-1"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, retry) = send(&app, post(&two_mugs(), Some("checkout-1"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry, first);

    let (_, other) = send(&app, post(&two_mugs(), Some("checkout-2"))).await;
    assert_ne!(other["id"], first["id"]);
}

#[tokio::test]
async fn bad_requests_get_a_status_and_a_code() {
    let (app, _schema) = app().await;
    let cases = [
        (
            post(
                &json!({"customer": "ada", "lines": [], "coupon": "FREE"}),
                None,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "STORE-E0008",
        ),
        (
            post(&json!({"customer": "ada", "lines": []}), None),
            StatusCode::UNPROCESSABLE_ENTITY,
            "STORE-E0002",
        ),
        (
            post(
                &json!({"customer": "ada", "lines": [{"sku": "mug", "quantity": 0}]}),
                None,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "STORE-E0004",
        ),
        (
            post(&two_mugs(), Some("not a key!")),
            StatusCode::BAD_REQUEST,
            "STORE-E0009",
        ),
        (
            post(&json!({"customer": "x".repeat(20_000), "lines": []}), None),
            StatusCode::PAYLOAD_TOO_LARGE,
            "STORE-E0008",
        ),
        (get("/orders/42"), StatusCode::NOT_FOUND, "STORE-E0007"),
        (
            get("/orders/9a2c2a4e-1111-4c3b-8d7e-2f8a9b0c1d2e"),
            StatusCode::NOT_FOUND,
            "STORE-E0007",
        ),
    ];
    for (request, status, code) in cases {
        let path = request.uri().to_string();
        let (answered, body) = send(&app, request).await;
        assert_eq!(
            (answered, body["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}
