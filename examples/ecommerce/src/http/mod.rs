//! The HTTP API (axum): the routes of the contract, their state, and the
//! layers every request goes through, outermost first:
//!
//! 1. request id: `x-request-id` taken from the client or drawn (a UUID),
//!    and sent back; the order's events carry it as correlation id;
//! 2. a tracing span per request, with the request id;
//! 3. metrics: count and latency per route template and status;
//! 4. the body limit (`SHOP_MAX_BODY_BYTES`);
//! 5. on `/v1/*` only: load shedding. At most `SHOP_MAX_IN_FLIGHT`
//!    requests run at once; one more is answered 503 at once, with a
//!    `Retry-After` header, before its handler runs: an order is either
//!    placed (201) or refused, never half-done.

pub mod cart;
pub mod customers;
pub mod json;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod products;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use composable_rust::AggregateRepository;
use composable_rust::health::HealthRegistry;
use composable_rust::postgres::DocumentTable;
use composable_rust::prelude::*;
use composable_rust::redis::RedisProjectionStore;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use uuid::Uuid;

use crate::auth::Tokens;
use crate::codes;
use crate::domain::cart::Cart;
use crate::domain::order::{Order, order_stream};
use crate::error::ApiError;
use crate::projections::cart::CartStore;
use crate::projections::order_history::OrderHistoryQueries;
use crate::telemetry;
use crate::write::Events;

/// What every handler may use. Cheap to clone (everything is shared).
#[derive(Clone)]
pub struct AppState {
    /// The event store.
    pub events: Events,
    /// Carts.
    pub carts: Arc<AggregateRepository<Cart, Events>>,
    /// Orders.
    pub orders: Arc<AggregateRepository<Order, Events>>,
    /// The cart read model (Redis in front of PostgreSQL).
    pub cart_views: Arc<CartStore>,
    /// The order history read model.
    pub history: OrderHistoryQueries,
    /// Redis: the best-sellers read model.
    pub redis: RedisProjectionStore,
    /// The product read model.
    pub products: DocumentTable,
    /// Signs and checks bearer tokens.
    pub tokens: Tokens,
    /// The probes.
    pub health: Arc<HealthRegistry>,
    /// What `/metrics` renders.
    pub metrics: Option<PrometheusHandle>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// The stream of `customer_id`'s cart.
    ///
    /// # Errors
    ///
    /// Never for a UUID.
    pub fn cart_stream(&self, customer_id: Uuid) -> Result<StreamId, ApiError> {
        self.carts
            .stream_id(customer_id)
            .map_err(|e| ApiError::backend(&e))
    }

    /// The stream of order `order_id`.
    ///
    /// # Errors
    ///
    /// Never for a UUID.
    pub fn order_stream(&self, order_id: Uuid) -> Result<StreamId, ApiError> {
        order_stream(order_id).map_err(|e| ApiError::backend(&e))
    }

    /// Order `order_id` from its events (the default state if none).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn load_order(&self, order_id: Uuid) -> Result<Order, ApiError> {
        let stream = self.order_stream(order_id)?;
        Ok(self
            .orders
            .load(&stream)
            .await
            .map_err(|e| ApiError::backend(&e))?
            .state)
    }
}

/// The router with every route and layer.
pub fn router(state: AppState, max_in_flight: usize, max_body_bytes: usize) -> Router {
    let overload = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(max_in_flight));
    let api = Router::new()
        .route("/v1/customers", post(customers::register))
        .route("/v1/products", get(products::list))
        .route("/v1/products/best-sellers", get(products::best_sellers))
        .route(
            "/v1/cart/items/{product_id}",
            put(cart::set_item).delete(cart::remove_item),
        )
        .route("/v1/cart", get(cart::get))
        .route("/v1/orders", post(orders::place).get(orders::list))
        .route("/v1/orders/{order_id}", get(orders::get))
        .route_layer(overload);
    let operations = Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi));
    api.merge(operations)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(track))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("http", method = %request.method(), uri = %request.uri(), request_id)
        })
        // A shed request is a 503 by design, and backend failures log
        // themselves (with their code): no error line per 5xx here.
        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Answer of an unknown route.
async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// The answer when the limit of requests in flight is reached.
async fn overloaded(error: tower::BoxError) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        telemetry::rejected("overload");
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::OVERLOADED,
            "too many requests in flight: retry after the Retry-After header's seconds",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::UNAVAILABLE,
        format!("the request failed: {error}"),
    )
    .into_response()
}

/// Records `shop_http_requests_total` and `shop_http_request_duration_seconds`
/// by route template (never the raw path: ids would explode the series).
async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let elapsed: Duration = started.elapsed();
    metrics::counter!(
        telemetry::HTTP_REQUESTS,
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => response.status().as_u16().to_string(),
    )
    .increment(1);
    metrics::histogram!(telemetry::HTTP_DURATION, "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    response
}
