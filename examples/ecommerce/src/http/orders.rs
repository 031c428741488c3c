//! The order routes. Placing an order is idempotent by the
//! `Idempotency-Key` header: the order id is derived from the customer
//! and the key (UUID v5), so a retry lands on the same stream; the
//! `order.placed` event is appended expecting no stream, so a second
//! order can never be written; and the event records a hash of the body,
//! so the same key with another body is refused instead of answered with
//! an order the client did not ask for.
//!
//! Placing an order is one read (the cart stream) and one commit to two
//! streams (`EventStore::append_to_streams`): the order's first event,
//! expecting no stream (the idempotency check is the store's conflict),
//! and the cart's checkout, at whatever version the cart is: it names the
//! cart version the order took, and removes only the lines set at or
//! before it. Both are written or neither, so no order ever leaves its
//! lines in the cart.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use composable_rust::event_store::StreamAppend;
use composable_rust::prelude::*;
use composable_rust::{EventMetadata, EventStoreError, ExpectedVersion, NewEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::AppState;
use super::json::{ApiJson, Customer, text};
use crate::codes;
use crate::domain::cart::CartEvent;
use crate::domain::order::{
    Address, Order, OrderCommand, OrderLine, OrderStatus, PlacedOrder, order_id_for,
};
use crate::error::{ApiError, ErrorBody};
use crate::projections::order_history::OrderView;
use crate::telemetry;

/// The header that makes `POST /v1/orders` safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// How many orders `GET /v1/orders` returns at most.
const HISTORY_LIMIT: u64 = 100;

/// `POST /v1/orders` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// Where to ship.
    pub shipping_address: Address,
    /// The payment provider's token: `tok_...` (`tok_decline` is declined).
    pub payment_token: String,
}

/// `POST /v1/orders` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderPlaced {
    /// The order.
    pub order_id: Uuid,
    /// `placed` for a new order; the current status for a replay.
    pub status: OrderStatus,
}

/// Places an order for the caller's cart.
#[utoipa::path(post, path = "/v1/orders", tag = "orders",
    request_body = PlaceOrderRequest,
    params(("Idempotency-Key" = String, Header, description = "1 to 64 visible ASCII characters; a retry with the same key and body returns the same order")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "placed", body = OrderPlaced),
        (status = 200, description = "placed before with this key and body", body = OrderPlaced),
        (status = 400, description = "malformed body or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 422, description = "a field out of range, an empty cart, or the key reused with another body", body = ErrorBody),
        (status = 503, description = "overloaded: retry after Retry-After", body = ErrorBody),
    ))]
pub async fn place(
    State(state): State<AppState>,
    Customer(customer_id): Customer,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PlaceOrderRequest>,
) -> Result<(StatusCode, Json<OrderPlaced>), ApiError> {
    let key = idempotency_key(&headers)?;
    validate(&request)?;
    // The hash of the body as parsed: the same JSON with other spacing or
    // field order is the same request.
    let canonical = serde_json::to_vec(&request).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INVALID_BODY,
            e.to_string(),
        )
    })?;
    let request_hash = hex::encode(Sha256::digest(&canonical));
    let order_id = order_id_for(customer_id, key);
    let stream = state.order_stream(order_id)?;

    // The one read: the cart, from its stream (the truth, never late).
    let cart_stream = state.cart_stream(customer_id)?;
    let cart = state
        .carts
        .load(&cart_stream)
        .await
        .map_err(|e| ApiError::backend(&e))?;
    let (cart_version, cart) = (cart.version, cart.state);
    if cart.lines.is_empty() {
        // A retry after the cart was emptied by this very order.
        if let Some(existing) = replay(&state, order_id, &request_hash).await? {
            return Ok((StatusCode::OK, Json(existing)));
        }
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::EMPTY_CART,
            "the cart is empty: add products with PUT /v1/cart/items/{product_id} first",
        ));
    }
    let request_id = headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            // The layer draws UUIDs; a client's own id of another shape
            // still gives a stable correlation id.
            value
                .parse::<Uuid>()
                .unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_OID, value.as_bytes()))
        });
    let placed = PlacedOrder {
        order_id,
        customer_id,
        lines: cart
            .lines
            .values()
            .map(|line| OrderLine {
                product_id: line.product_id.clone(),
                name: line.name.clone(),
                quantity: line.quantity,
                price_cents: line.unit_price_cents,
            })
            .collect(),
        total_cents: cart.total_cents(),
        shipping_address: request.shipping_address,
        payment_token: request.payment_token,
        request_hash: request_hash.clone(),
        request_id,
        placed_at: chrono::Utc::now(),
        cart_version,
    };
    let metadata = EventMetadata {
        correlation_id: request_id,
        ..EventMetadata::default()
    };
    // The one commit: the order's first event, expecting no stream (the
    // order is new, its id comes from the key, so there is nothing to
    // load: a second writer with the same key is the store's conflict),
    // and the cart's checkout, at any version of the cart (the event names
    // the version it empties through, so a line set meanwhile stays, and
    // the GET /v1/cart read model checks the version it shows).
    let events = Order::default()
        .decide(OrderCommand::Place(Box::new(placed)), &())
        .map_err(|refusal| ApiError::invalid_field(refusal.to_string()))?;
    let checked_out = CartEvent::CheckedOut {
        order_id,
        through_version: Some(cart_version),
    };
    let order_events = events
        .iter()
        .map(|event| NewEvent::from_event(event).map(|e| e.with_metadata(metadata.clone())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::backend(&e))?;
    let cart_events = vec![
        NewEvent::from_event(&checked_out)
            .map(|e| e.with_metadata(metadata))
            .map_err(|e| ApiError::backend(&e))?,
    ];
    let commit = vec![
        StreamAppend::new(stream.clone(), ExpectedVersion::NoStream, order_events),
        StreamAppend::new(cart_stream, ExpectedVersion::Any, cart_events),
    ];
    match state.events.append_to_streams(commit).await {
        Ok(_) => telemetry::order_placed(),
        // A request with the same key won (now or earlier): a replay.
        Err(conflict @ EventStoreError::WrongExpectedVersion { .. }) => {
            return match replay(&state, order_id, &request_hash).await? {
                Some(existing) => Ok((StatusCode::OK, Json(existing))),
                None => Err(ApiError::backend(&conflict)),
            };
        }
        Err(error) => return Err(ApiError::backend(&error)),
    }
    Ok((
        StatusCode::CREATED,
        Json(OrderPlaced {
            order_id,
            status: OrderStatus::Placed,
        }),
    ))
}

/// The order placed before with this id, if any: answered when the body is
/// the same, refused when it is not.
async fn replay(
    state: &AppState,
    order_id: Uuid,
    request_hash: &str,
) -> Result<Option<OrderPlaced>, ApiError> {
    let order = state.load_order(order_id).await?;
    let Some(placed) = &order.placed else {
        return Ok(None);
    };
    if placed.request_hash != request_hash {
        crate::telemetry::rejected("invalid");
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was used with another body: use a new key for a new order",
        ));
    }
    Ok(Some(OrderPlaced {
        order_id,
        status: order.status,
    }))
}

fn idempotency_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|value| value.to_str().ok())
        .filter(|key| (1..=64).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()));
    key.ok_or_else(|| {
        crate::telemetry::rejected("invalid");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_IDEMPOTENCY_KEY,
            "POST /v1/orders needs an Idempotency-Key header of 1 to 64 visible ASCII characters (e.g. a UUID), the same for every retry of one order",
        )
    })
}

fn validate(request: &PlaceOrderRequest) -> Result<(), ApiError> {
    let address = &request.shipping_address;
    text("shipping_address.name", &address.name, 100)?;
    text("shipping_address.line1", &address.line1, 200)?;
    text("shipping_address.city", &address.city, 100)?;
    text("shipping_address.postcode", &address.postcode, 16)?;
    text("shipping_address.country", &address.country, 2)?;
    text("payment_token", &request.payment_token, 64)?;
    if !request.payment_token.starts_with("tok_") {
        return Err(ApiError::invalid_field(
            "payment_token must start with tok_",
        ));
    }
    Ok(())
}

/// One of the caller's orders (404 for anyone else's: its existence is
/// not revealed).
#[utoipa::path(get, path = "/v1/orders/{order_id}", tag = "orders",
    params(("order_id" = Uuid, Path, description = "the order")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the order, as its events say now", body = OrderView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 404, description = "no such order of the caller's", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Customer(customer_id): Customer,
    Path(order_id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let order_id: Uuid = order_id.parse().map_err(|_| ApiError::not_found("order"))?;
    let order = state.load_order(order_id).await?;
    match view_of(&order) {
        Some(view) if view.customer_id == customer_id => Ok(Json(view)),
        _ => Err(ApiError::not_found("order")),
    }
}

/// The order as the history shows it, from the aggregate (read-your-writes).
fn view_of(order: &Order) -> Option<OrderView> {
    let placed = order.placed.as_ref()?;
    Some(OrderView {
        order_id: placed.order_id,
        customer_id: placed.customer_id,
        status: order.status,
        items: placed.lines.clone(),
        total_cents: placed.total_cents,
        placed_at: placed
            .placed_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        cancel_reason: order.cancel_reason.clone(),
        tracking_number: order.tracking_number.clone(),
    })
}

/// The query string of `GET /v1/orders`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct OrderQuery {
    /// Only orders with a product whose name contains this text (any case).
    pub q: Option<String>,
}

/// The caller's orders, newest first (the order history read model: it
/// may lag the events by a moment). A customer has few orders, so the
/// product-name filter runs here on the JSONB documents read by the
/// customer's index.
#[utoipa::path(get, path = "/v1/orders", tag = "orders",
    params(OrderQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller's orders, newest first (at most 100)", body = [OrderView]),
        (status = 401, description = "no valid token", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Customer(customer_id): Customer,
    Query(query): Query<OrderQuery>,
) -> Result<Json<Vec<OrderView>>, ApiError> {
    let mut orders = state
        .history
        .orders_of(customer_id, HISTORY_LIMIT)
        .await
        .map_err(|e| ApiError::backend(&e))?;
    if let Some(text) = query.q.map(|q| q.to_lowercase()).filter(|q| !q.is_empty()) {
        orders.retain(|order| {
            order
                .items
                .iter()
                .any(|item| item.name.to_lowercase().contains(&text))
        });
    }
    Ok(Json(orders))
}
