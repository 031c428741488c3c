//! The shop's Grafana dashboard (`deploy/grafana/dashboards/shop.json`)
//! against a real Prometheus: the shop runs on PostgreSQL and Redis with
//! the Prometheus recorder installed; a `prometheus` process of the test's
//! own (`composable_rust_testing::prometheus`) scrapes its `/metrics` every
//! second; a workload over HTTP exercises every panel (orders that ship,
//! a declined payment and an out-of-stock product that are compensated,
//! requests without a token and with an invalid body, a burst beyond
//! `SHOP_MAX_IN_FLIGHT` that is shed with 503s, cart reads through the
//! cache); then every expression of every panel must return data.
//!
//! The workload starts after Prometheus's first scrape, so every counter
//! it creates has samples on both sides of its first increment, and keeps
//! a trickle of requests going while the panels are evaluated (`rate()`
//! needs two samples in its window). The dead-letter and saga-timeout
//! panels fall back to 0 while nothing has happened (see their queries),
//! so they need no poison event or stalled gateway here.
//!
//! Without a `prometheus` binary the test is skipped, saying so, unless
//! `COMPOSABLE_REQUIRE_PROMETHEUS=1` (CI sets it).

use std::path::Path;
use std::time::Duration;

use composable_rust_testing::fixtures::{TestKeyPrefix, TestSchema};
use composable_rust_testing::prometheus::{Prometheus, binary_or_skip, dashboard_queries};
use composable_rust_testing::services;
use ecommerce::client::{ShopClient, order_request};
use ecommerce::domain::order::OrderStatus;
use ecommerce::{Config, RunningShop};
use reqwest::{Method, StatusCode};
use tokio::task::JoinSet;

/// The dashboard, relative to this crate.
const DASHBOARD: &str = "deploy/grafana/dashboards/shop.json";
/// How long Prometheus gets to scrape, and the panels to have data.
const DEADLINE: Duration = Duration::from_secs(60);
/// How long a checkout may take.
const CHECKOUT: Duration = Duration::from_secs(30);
/// Requests in flight before the shop sheds load: small, so a burst
/// exceeds it; the workload's own steps run one at a time.
const MAX_IN_FLIGHT: usize = 2;
/// The burst that must be partly shed.
const BURST: usize = 48;

/// One test: a process has one global recorder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_of_the_shop_dashboard_has_data_in_a_real_prometheus() {
    let Some(binary) = binary_or_skip() else {
        return;
    };
    let queries = dashboard_queries(&Path::new(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD));
    assert!(
        queries.len() >= 15,
        "the dashboard has {} queries",
        queries.len()
    );

    let handle = ecommerce::telemetry::install_recorder().expect("the process's first recorder");
    // Declared before the shop, so they are dropped (and cleaned) after it.
    let schema = TestSchema::new();
    let prefix = TestKeyPrefix::new();
    let config = Config::new(
        services::database_url(),
        services::redis_url(),
        b"dashboard test secret: thirty-two bytes or more".to_vec(),
    )
    .with_bind("127.0.0.1:0".parse().unwrap())
    .with_schema(schema.name())
    .with_redis_prefix(prefix.as_str())
    .with_max_in_flight(MAX_IN_FLIGHT)
    .with_metrics(handle);
    let shop = ecommerce::start(config).await.expect("the shop starts");
    let client = ShopClient::new(shop.base_url());

    let mut prometheus = Prometheus::start(&binary, "shop", &[shop.addr()]).await;
    prometheus.wait_for_scrape(DEADLINE).await;

    workload(&shop, &client).await;
    let trickle = tokio::spawn(trickle(client.clone()));
    let missing = prometheus.panels_without_data(&queries, DEADLINE).await;
    trickle.abort();
    let _ = trickle.await;
    drop(prometheus);
    shop.shutdown().await;
    assert!(
        missing.is_empty(),
        "panels of {DASHBOARD} whose query returned no data after {DEADLINE:?}:\n{}",
        missing.join("\n")
    );
}

/// Everything the panels show, once.
async fn workload(shop: &RunningShop, client: &ShopClient) {
    // Three checkouts: shipped, declined (compensated), out of stock.
    let cases = [
        ("kettle", "tok_visa", OrderStatus::Shipped),
        ("grinder", "tok_decline", OrderStatus::Cancelled),
        ("out-of-stock", "tok_visa", OrderStatus::Cancelled),
    ];
    for (n, (product, token, expected)) in cases.into_iter().enumerate() {
        let registered = client
            .register(&format!("Panel {n}"), &format!("panel-{n}@example.com"))
            .await
            .expect("registered");
        let customer = client.with_token(registered.token);
        customer.add_to_cart(product, 1).await.expect("added");
        // Through the cart cache (written through by the projection,
        // so a hit).
        customer.cart().await.expect("the cart");
        let (status, placed) = customer
            .place_order(&format!("dashboard-{n}"), &order_request(token))
            .await
            .expect("placed");
        assert_eq!(status, StatusCode::CREATED);
        let ended = shop
            .wait_for_checkout(placed.order_id, CHECKOUT)
            .await
            .expect("the checkout ends");
        assert_eq!(ended, expected, "{product} paid with {token}");
        let orders = customer.orders().await.expect("the order history");
        assert_eq!(orders.len(), 1);
    }

    // 4xx: no token (401), a malformed body (400).
    let unauthenticated = client
        .request(Method::GET, "/v1/cart")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let malformed = client
        .request(Method::POST, "/v1/customers")
        .header("content-type", "application/json")
        .body("{\"name\": 7}")
        .send()
        .await
        .unwrap();
    assert!(
        malformed.status().is_client_error(),
        "{}",
        malformed.status()
    );

    // A burst beyond the in-flight limit: some answers are 503.
    let mut burst = JoinSet::new();
    for _ in 0..BURST {
        let client = client.clone();
        burst.spawn(async move { client.request(Method::GET, "/v1/products").send().await });
    }
    let mut shed = 0;
    while let Some(answer) = burst.join_next().await {
        let status = answer.unwrap().expect("an answer").status();
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
        shed += usize::from(status == StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!(
        shed > 0,
        "a burst of {BURST} with {MAX_IN_FLIGHT} in flight shed nothing"
    );
}

/// A request every 200 ms, so the rate panels keep fresh samples while
/// they are evaluated; answers do not matter (some may be shed).
async fn trickle(client: ShopClient) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let _ = client.request(Method::GET, "/v1/products").send().await;
    }
}
