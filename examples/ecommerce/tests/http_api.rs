//! The shop over HTTP, end to end: each test starts the whole service
//! (PostgreSQL in a schema of its own, Redis under a key prefix of its
//! own, the server on a free port) and talks to it through `ShopClient`.
//! Waiting for the checkout saga uses `RunningShop::wait_for_checkout`,
//! which is woken by the event store's notifications and then waits for
//! the read models' positions; no test sleeps.
//!
//! One test binary for all of them: each extra binary costs a link.

use std::sync::OnceLock;
use std::time::Duration;

use composable_rust::prelude::*;
use composable_rust::shutdown::RunnerOutcome;
use composable_rust::{Position, StoredEvent};
use composable_rust_testing::fixtures::{TestKeyPrefix, TestSchema};
use composable_rust_testing::services;
use ecommerce::client::{ClientError, ShopClient, order_request};
use ecommerce::config::BusKind;
use ecommerce::domain::order::OrderStatus;
use ecommerce::http::openapi::ROUTES;
use ecommerce::{Config, RunningShop};
use metrics_exporter_prometheus::PrometheusHandle;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

const SECRET: &[u8] = b"test secret: at least thirty-two bytes long";
const CHECKOUT: Duration = Duration::from_secs(20);

/// The process's recorder: installed once, shared by every test's shop.
fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| ecommerce::telemetry::install_recorder().expect("the first recorder"))
        .clone()
}

/// A running shop and the places it keeps its data (dropped after it).
struct TestShop {
    shop: RunningShop,
    client: ShopClient,
    _schema: TestSchema,
    _prefix: TestKeyPrefix,
}

impl TestShop {
    async fn start() -> Self {
        Self::start_with(|config| config).await
    }

    async fn start_with(adjust: impl FnOnce(Config) -> Config) -> Self {
        // Logs on stderr when asked for (RUST_LOG=debug cargo test ...).
        if std::env::var_os("RUST_LOG").is_some() {
            ecommerce::telemetry::init_tracing();
        }
        let schema = TestSchema::new();
        let prefix = TestKeyPrefix::new();
        let config = Config::new(services::database_url(), services::redis_url(), SECRET)
            .with_bind("127.0.0.1:0".parse().unwrap())
            .with_schema(schema.name())
            .with_redis_prefix(prefix.as_str())
            .with_metrics(recorder());
        let shop = ecommerce::start(adjust(config))
            .await
            .expect("the shop starts");
        let client = ShopClient::new(shop.base_url());
        Self {
            shop,
            client,
            _schema: schema,
            _prefix: prefix,
        }
    }

    /// A registered customer's client.
    async fn customer(&self, name: &str) -> (Uuid, ShopClient) {
        let registered = self
            .client
            .register(name, &format!("{}@example.com", name.to_lowercase()))
            .await
            .expect("registered");
        (
            registered.customer_id,
            self.client.with_token(registered.token),
        )
    }

    async fn all_events(&self) -> Vec<StoredEvent> {
        self.shop
            .events()
            .read_all(Position::START, 100_000)
            .await
            .expect("read the store")
    }

    async fn stock_of(&self, product_id: &str) -> u64 {
        let products = self.client.products(None).await.expect("products");
        products
            .iter()
            .find(|p| p.product_id == product_id)
            .unwrap_or_else(|| panic!("{product_id} is in the catalog"))
            .stock
    }

    /// Stops the shop and checks every runner finished its work.
    async fn stop(self) {
        let report = self.shop.shutdown().await;
        for runner in &report.runners {
            assert_eq!(runner.outcome, RunnerOutcome::Finished, "{}", runner.name);
        }
        assert!(report.runners.len() >= 5, "{report:?}");
    }
}

fn api_error(result: Result<impl std::fmt::Debug, ClientError>) -> (StatusCode, String) {
    let error = result.expect_err("an error answer");
    (
        error.status().expect("a status"),
        error.code().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_is_reserved_paid_and_shipped_and_shows_in_the_history() {
    let shop = TestShop::start().await;
    purchase(&shop).await;
    shop.stop().await;
}

/// Register, fill the cart, order, and follow the checkout to the end.
async fn purchase(shop: &TestShop) {
    let stock_before = shop.stock_of("kettle").await;
    let (customer_id, ada) = shop.customer("Ada").await;
    ada.add_to_cart("kettle", 2).await.unwrap();
    ada.add_to_cart("grinder", 1).await.unwrap();
    let cart = ada.add_to_cart("kettle", 3).await.unwrap();
    assert_eq!(cart.items.len(), 2);
    assert_eq!(cart.total_cents, 3 * 4_500 + 6_900);
    let cart = ada.remove_from_cart("grinder").await.unwrap();
    assert_eq!(cart.total_cents, 3 * 4_500);
    assert_eq!(ada.cart().await.unwrap(), cart, "GET shows the last write");

    let (status, placed) = ada
        .place_order("first-order", &order_request("tok_visa"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(placed.status, OrderStatus::Placed);
    assert!(
        ada.cart().await.unwrap().items.is_empty(),
        "the order took the cart"
    );

    let status = shop
        .shop
        .wait_for_checkout(placed.order_id, CHECKOUT)
        .await
        .unwrap();
    assert_eq!(status, OrderStatus::Shipped);
    let history = ada.orders().await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].order_id, placed.order_id);
    assert_eq!(history[0].status, OrderStatus::Shipped);
    assert_eq!(history[0].customer_id, customer_id);
    assert_eq!(ada.orders_matching("KETTLE").await.unwrap().len(), 1);
    assert!(ada.orders_matching("grinder").await.unwrap().is_empty());
    let order = ada.order(placed.order_id).await.unwrap();
    assert!(order.tracking_number.is_some());
    assert_eq!(order.total_cents, 13_500);
    assert_eq!(shop.stock_of("kettle").await, stock_before - 3);
    let best = ada.best_sellers().await.unwrap();
    assert!(
        best.iter()
            .any(|b| b.product_id == "kettle" && b.units == 3),
        "{best:?}"
    );
    assert_eq!(shop.shop.payments().charged(placed.order_id), Some(13_500));

    // Every event of the checkout carries the placing request's id.
    let order_events: Vec<_> = shop
        .all_events()
        .await
        .into_iter()
        .filter(|e| e.stream_id.as_str() == format!("order-{}", placed.order_id))
        .collect();
    let types: Vec<_> = order_events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "order.placed",
            "order.stock_reserved",
            "order.payment_charged",
            "order.shipped"
        ]
    );
    let correlation = order_events[0].metadata.correlation_id;
    assert!(
        correlation.is_some(),
        "x-request-id became the correlation id"
    );
    assert!(
        order_events
            .iter()
            .all(|e| e.metadata.correlation_id == correlation)
    );

    let metrics = ada.metrics().await.unwrap();
    for expected in [
        "shop_http_requests_total{method=\"POST\",route=\"/v1/orders\",status=\"201\"}",
        "route=\"/v1/orders/{order_id}\"",
        "shop_orders_placed_total",
        "shop_checkout_outcomes_total{outcome=\"shipped\"}",
        "shop_http_request_duration_seconds_bucket",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from /metrics"
        );
    }
    assert!(
        !metrics.contains(&placed.order_id.to_string()),
        "raw paths as labels"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_payment_or_missing_stock_cancels_the_order_and_releases_the_stock() {
    let shop = TestShop::start().await;
    let stock_before = shop.stock_of("pour-over").await;
    let (_, grace) = shop.customer("Grace").await;

    grace.add_to_cart("pour-over", 4).await.unwrap();
    let (_, declined) = grace
        .place_order("declined", &order_request("tok_decline"))
        .await
        .unwrap();
    let status = shop
        .shop
        .wait_for_checkout(declined.order_id, CHECKOUT)
        .await
        .unwrap();
    assert_eq!(status, OrderStatus::Cancelled);
    let order = grace.order(declined.order_id).await.unwrap();
    assert!(order.cancel_reason.unwrap().contains("declined"));
    assert_eq!(
        shop.stock_of("pour-over").await,
        stock_before,
        "the stock went back"
    );
    assert_eq!(shop.shop.payments().charged(declined.order_id), None);

    grace.add_to_cart("pour-over", 1).await.unwrap();
    grace.add_to_cart("out-of-stock", 1).await.unwrap();
    let (_, short) = grace
        .place_order("short", &order_request("tok_visa"))
        .await
        .unwrap();
    let status = shop
        .shop
        .wait_for_checkout(short.order_id, CHECKOUT)
        .await
        .unwrap();
    assert_eq!(status, OrderStatus::Cancelled);
    let order = grace.order(short.order_id).await.unwrap();
    assert!(
        order
            .cancel_reason
            .unwrap()
            .contains("out-of-stock is out of stock")
    );
    assert_eq!(
        shop.stock_of("pour-over").await,
        stock_before,
        "nothing is held"
    );
    assert_eq!(
        shop.shop.payments().charged(short.order_id),
        None,
        "never charged"
    );
    let best = grace.best_sellers().await.unwrap();
    assert!(
        best.iter().all(|b| b.product_id != "pour-over"),
        "released: {best:?}"
    );

    let history = grace.orders().await.unwrap();
    assert_eq!(
        history.iter().map(|o| o.order_id).collect::<Vec<_>>(),
        [short.order_id, declined.order_id],
        "newest first"
    );
    assert!(history.iter().all(|o| o.status == OrderStatus::Cancelled));
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_see_only_their_own_orders_and_tokens_are_checked() {
    // On the in-memory bus (SHOP_BUS=memory): the saga still completes.
    let shop = TestShop::start_with(|config| config.with_bus(BusKind::Memory)).await;
    let (_, ada) = shop.customer("Ada").await;
    let (_, eve) = shop.customer("Eve").await;
    ada.add_to_cart("scale", 1).await.unwrap();
    let (_, placed) = ada
        .place_order("k", &order_request("tok_visa"))
        .await
        .unwrap();

    assert_eq!(
        api_error(eve.order(placed.order_id).await),
        (StatusCode::NOT_FOUND, "SHOP-E0005".into())
    );
    assert_eq!(
        api_error(eve.order(Uuid::new_v4()).await),
        (StatusCode::NOT_FOUND, "SHOP-E0005".into())
    );
    assert!(eve.orders().await.unwrap().is_empty());
    assert!(eve.cart().await.unwrap().items.is_empty());

    let anonymous = shop.client.clone();
    assert_eq!(
        api_error(anonymous.orders().await),
        (StatusCode::UNAUTHORIZED, "SHOP-E0004".into())
    );
    let forged =
        shop.client
            .with_token(format!("{}.9999999999.{}", Uuid::new_v4(), "ab".repeat(32)));
    assert_eq!(
        api_error(forged.cart().await),
        (StatusCode::UNAUTHORIZED, "SHOP-E0004".into())
    );
    let status = shop
        .shop
        .wait_for_checkout(placed.order_id, CHECKOUT)
        .await
        .unwrap();
    assert_eq!(status, OrderStatus::Shipped);
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_a_coded_4xx_and_write_nothing() {
    let shop = TestShop::start_with(|mut config| {
        config.max_body_bytes = 1_024;
        config
    })
    .await;
    let (_, ada) = shop.customer("Ada").await;
    let (_, bob) = shop.customer("Bob").await;
    bob.add_to_cart("kettle", 1).await.unwrap();
    let before = shop.all_events().await.len();

    let anonymous = &shop.client;
    let raw = |client: &ShopClient, method: Method, path: &str, body: &str| {
        client
            .request(method, path)
            .header("content-type", "application/json")
            .header("idempotency-key", "key-1")
            .body(body.to_owned())
    };
    let long = "x".repeat(101);
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (raw(anonymous, Method::POST, "/v1/customers", "{\"name\": \"Ada\""), StatusCode::BAD_REQUEST, "SHOP-E0001"),
        (raw(anonymous, Method::POST, "/v1/customers", r#"{"name":"Ada","email":"a@b.c","admin":true}"#), StatusCode::BAD_REQUEST, "SHOP-E0001"),
        (raw(anonymous, Method::POST, "/v1/customers", r#"{"name":"","email":"a@b.c"}"#), StatusCode::UNPROCESSABLE_ENTITY, "SHOP-E0002"),
        (raw(anonymous, Method::POST, "/v1/customers", &format!(r#"{{"name":"{long}","email":"a@b.c"}}"#)), StatusCode::UNPROCESSABLE_ENTITY, "SHOP-E0002"),
        (raw(anonymous, Method::POST, "/v1/customers", r#"{"name":"Ada","email":"no-at-sign"}"#), StatusCode::UNPROCESSABLE_ENTITY, "SHOP-E0002"),
        (raw(anonymous, Method::POST, "/v1/customers", &format!(r#"{{"name":"{}","email":"a@b.c"}}"#, "y".repeat(2_000))), StatusCode::PAYLOAD_TOO_LARGE, "SHOP-E0003"),
        (raw(&ada, Method::PUT, "/v1/cart/items/kettle", r#"{"quantity":0}"#), StatusCode::UNPROCESSABLE_ENTITY, "SHOP-E0002"),
        (raw(&ada, Method::PUT, "/v1/cart/items/kettle", r#"{"quantity":-1}"#), StatusCode::UNPROCESSABLE_ENTITY, "SHOP-E0002"),
        (raw(&ada, Method::PUT, "/v1/cart/items/kettle", r#"{"quantity":101}"#), StatusCode::UNPROCESSABLE_ENTITY, "SHOP-E0002"),
        (raw(&ada, Method::PUT, "/v1/cart/items/kettle", r#"{"quantity":"two"}"#), StatusCode::BAD_REQUEST, "SHOP-E0001"),
        (raw(&ada, Method::PUT, "/v1/cart/items/no-such-thing", r#"{"quantity":1}"#), StatusCode::NOT_FOUND, "SHOP-E0005"),
        (raw(anonymous, Method::PUT, "/v1/cart/items/kettle", r#"{"quantity":1}"#), StatusCode::UNAUTHORIZED, "SHOP-E0004"),
        (raw(&ada, Method::POST, "/v1/orders", &json!(order_request("tok_visa")).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "SHOP-E0008"),
        (raw(&bob, Method::POST, "/v1/orders", &json!(order_request("visa")).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "SHOP-E0002"),
        (
            raw(&bob, Method::POST, "/v1/orders", &json!({"shipping_address": {"name": "B", "line1": "1 Rd", "city": "", "postcode": "1", "country": "GB"}, "payment_token": "tok_visa"}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "SHOP-E0002",
        ),
        (
            bob.request(Method::POST, "/v1/orders").json(&order_request("tok_visa")),
            StatusCode::BAD_REQUEST,
            "SHOP-E0006",
        ),
        (
            bob.request(Method::POST, "/v1/orders").header("idempotency-key", "k".repeat(65)).json(&order_request("tok_visa")),
            StatusCode::BAD_REQUEST,
            "SHOP-E0006",
        ),
        (anonymous.request(Method::GET, "/v1/nothing-here"), StatusCode::NOT_FOUND, "SHOP-E0005"),
    ];
    for (index, (request, status, code)) in cases.into_iter().enumerate() {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "case {index}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "case {index}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "case {index}"
        );
    }
    assert_eq!(shop.all_events().await.len(), before, "nothing was written");
    assert_eq!(
        bob.cart().await.unwrap().items.len(),
        1,
        "Bob's cart is intact"
    );
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_places_one_order_and_refuses_another_body() {
    let shop = TestShop::start().await;
    let (_, ada) = shop.customer("Ada").await;
    ada.add_to_cart("beans-1kg", 2).await.unwrap();
    let body = order_request("tok_visa");
    let (first_status, first) = ada.place_order("retry-me", &body).await.unwrap();
    let (again_status, again) = ada.place_order("retry-me", &body).await.unwrap();
    assert_eq!(
        (first_status, again_status),
        (StatusCode::CREATED, StatusCode::OK)
    );
    assert_eq!(first.order_id, again.order_id);

    let other = order_request("tok_mastercard");
    assert_eq!(
        api_error(ada.place_order("retry-me", &other).await),
        (StatusCode::UNPROCESSABLE_ENTITY, "SHOP-E0007".into())
    );
    shop.shop
        .wait_for_checkout(first.order_id, CHECKOUT)
        .await
        .unwrap();
    let events = shop.all_events().await;
    let of_type = |kind: &str| -> Vec<&StoredEvent> {
        events.iter().filter(|e| e.event_type == kind).collect()
    };
    let (placed, checked_out) = (of_type("order.placed"), of_type("cart.checked_out"));
    assert_eq!((placed.len(), checked_out.len()), (1, 1));
    // The order and its cart's checkout are one commit: both or neither.
    assert_eq!(placed[0].position.commit, checked_out[0].position.commit);
    assert_eq!(ada.orders().await.unwrap().len(), 1);
    // A replay after the checkout answers with where the order is now.
    let (status, replayed) = ada.place_order("retry-me", &body).await.unwrap();
    assert_eq!(
        (status, replayed.status),
        (StatusCode::OK, OrderStatus::Shipped)
    );
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_limit_gets_503s_and_every_accepted_order_completes() {
    const CUSTOMERS: usize = 40;
    let shop = TestShop::start_with(|config| config.with_max_in_flight(2)).await;
    let mut customers = Vec::new();
    for n in 0..CUSTOMERS {
        let (_, client) = shop.customer(&format!("Burst{n}")).await;
        client.add_to_cart("espresso-cup", 1).await.unwrap();
        customers.push(client);
    }
    let mut burst = tokio::task::JoinSet::new();
    for client in customers.clone() {
        burst.spawn(async move {
            let response = client
                .request(Method::POST, "/v1/orders")
                .header("idempotency-key", "burst")
                .json(&order_request("tok_visa"))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let retry_after = response.headers().get("retry-after").cloned();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, retry_after, body)
        });
    }
    let (mut accepted, mut shed) = (Vec::new(), 0);
    while let Some(result) = burst.join_next().await {
        let (status, retry_after, body) = result.unwrap();
        match status {
            StatusCode::CREATED => {
                accepted.push(body["order_id"].as_str().unwrap().parse::<Uuid>().unwrap())
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["code"], "SHOP-E0009");
                assert!(retry_after.is_some(), "a 503 says when to retry");
                shed += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        shed > 0,
        "2 in flight and {CUSTOMERS} at once: some must be shed"
    );
    assert!(!accepted.is_empty(), "some orders get through");
    assert_eq!(accepted.len() + shed, CUSTOMERS);
    for order_id in &accepted {
        let status = shop
            .shop
            .wait_for_checkout(*order_id, CHECKOUT)
            .await
            .unwrap();
        assert_eq!(status, OrderStatus::Shipped, "accepted order {order_id}");
    }
    let placed = shop
        .all_events()
        .await
        .iter()
        .filter(|e| e.event_type == "order.placed")
        .count();
    assert_eq!(placed, accepted.len(), "a shed request placed nothing");
    let metrics = shop.client.metrics().await.unwrap();
    assert!(metrics.contains("shop_http_rejected_total{reason=\"overload\"}"));
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_the_router_serves() {
    let shop = TestShop::start().await;
    let document = shop.client.openapi().await.unwrap();
    let paths = document["paths"].as_object().expect("paths");
    for (method, path) in ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is not documented"
        );
        // The router serves it: anything but the fallback's answer.
        let concrete = path
            .replace("{product_id}", "kettle")
            .replace("{order_id}", &Uuid::new_v4().to_string());
        let response = shop
            .client
            .request(method.to_uppercase().parse().unwrap(), &concrete)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("route not found"),
            "{method} {path} is not routed ({status})"
        );
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "the document has routes the router lacks"
    );
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(shop.client.probe("/health").await.unwrap(), StatusCode::OK);
    assert_eq!(shop.client.probe("/ready").await.unwrap(), StatusCode::OK);
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_over_the_kafka_bus() {
    let Ok(bootstrap) = services::try_kafka_bootstrap() else {
        eprintln!(
            "skipped: KAFKA_BOOTSTRAP is not set (run `source ci/start-services` with tansu installed to run this test)"
        );
        return;
    };
    let shop = TestShop::start_with(|config| config.with_bus(BusKind::Kafka { bootstrap })).await;
    purchase(&shop).await;
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_orders_and_seeds_nothing_twice() {
    let schema = TestSchema::new();
    let prefix = TestKeyPrefix::new();
    let config = || {
        Config::new(services::database_url(), services::redis_url(), SECRET)
            .with_bind("127.0.0.1:0".parse().unwrap())
            .with_schema(schema.name())
            .with_redis_prefix(prefix.as_str())
            .with_bus(BusKind::Redis)
    };
    let first = ecommerce::start(config()).await.unwrap();
    let client = ShopClient::new(first.base_url());
    let registered = client.register("Ada", "ada@example.com").await.unwrap();
    let ada = client.with_token(registered.token.clone());
    ada.add_to_cart("kettle", 1).await.unwrap();
    let (_, placed) = ada
        .place_order("k", &order_request("tok_visa"))
        .await
        .unwrap();
    first
        .wait_for_checkout(placed.order_id, CHECKOUT)
        .await
        .unwrap();
    let events = first.events().clone();
    first.shutdown().await;
    // Counted once everything stopped (the saga records its end after the
    // order's last event).
    let events = events
        .read_all(Position::START, 100_000)
        .await
        .unwrap()
        .len();

    let second = ecommerce::start(config()).await.unwrap();
    let ada = ShopClient::new(second.base_url()).with_token(registered.token);
    assert_eq!(
        ada.order(placed.order_id).await.unwrap().status,
        OrderStatus::Shipped
    );
    assert_eq!(
        second
            .events()
            .read_all(Position::START, 100_000)
            .await
            .unwrap()
            .len(),
        events,
        "seeding is idempotent"
    );
    second.shutdown().await;
}

/// The cart's checkout removes the lines the order took, by the cart
/// version the order records: a line set afterwards stays, and the next
/// order takes only it. `GET /v1/cart` shows each step at once (from the
/// read model when it is current, from the stream when it is late).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_takes_only_the_lines_it_saw_and_the_cart_reads_its_own_writes() {
    let shop = TestShop::start().await;
    let (_, ada) = shop.customer("Ada").await;
    ada.add_to_cart("kettle", 2).await.unwrap();
    let (status, first) = ada
        .place_order("first", &order_request("tok_visa"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    assert!(ada.cart().await.unwrap().items.is_empty());

    let added = ada.add_to_cart("scale", 1).await.unwrap();
    assert_eq!(ada.cart().await.unwrap(), added, "GET shows the new line");
    assert_eq!(added.items.len(), 1);
    assert_eq!(added.items[0].product_id, "scale");

    // A retry of the first order is a replay: it neither takes the new
    // line nor empties the cart again.
    let (status, replayed) = ada
        .place_order("first", &order_request("tok_visa"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replayed.order_id, first.order_id);
    assert_eq!(ada.cart().await.unwrap(), added, "the replay kept the line");

    let (status, second) = ada
        .place_order("second", &order_request("tok_visa"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let items = ada.order(second.order_id).await.unwrap().items;
    assert_eq!(
        items
            .iter()
            .map(|i| i.product_id.as_str())
            .collect::<Vec<_>>(),
        ["scale"]
    );
    let items = ada.order(first.order_id).await.unwrap().items;
    assert_eq!(
        items
            .iter()
            .map(|i| i.product_id.as_str())
            .collect::<Vec<_>>(),
        ["kettle"]
    );
    assert!(ada.cart().await.unwrap().items.is_empty());
    shop.stop().await;
}
