//! The shop's HTTP API: JSON in, JSON out, every failure an `ApiError`
//! with a status, a stable code and a message.
//!
//! ```text
//! POST /orders                     place an order (optional `Idempotency-Key` header)
//! GET  /orders/{id}                an order's status and total
//! GET  /customers/{customer}/orders  a customer's orders, from the read model
//! ```

mod error;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use composable_rust::postgres::PostgresProjectionStore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use error::ApiError;

use crate::catalog::Cents;
use crate::history::{self, PastOrder};
use crate::order::{Line, Order, OrderError};
use crate::shop::{Shop, ShopError};

// ANCHOR: router
/// The largest request body the API reads: an order of 100 lines is under
/// 3 KiB. A bigger body is refused before it is parsed.
const BODY_LIMIT: usize = 16 * 1024;

/// The API's routes, on `shop`.
pub fn router(shop: Arc<Shop>) -> Router {
    Router::new()
        .route("/orders", post(place_order))
        .route("/orders/{id}", get(order))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shop)
}

/// The routes that read the order history, from `read_model` (where the
/// history projection writes).
pub fn history_router(read_model: Arc<PostgresProjectionStore>) -> Router {
    Router::new()
        .route("/customers/{customer}/orders", get(customer_orders))
        .with_state(read_model)
}
// ANCHOR_END: router

// ANCHOR: bodies
/// The body of `POST /orders`. Unknown fields are refused: a misspelt
/// `"quantty"` must not silently order the default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// Who orders: 1 to 200 characters.
    pub customer: String,
    /// What they order.
    pub lines: Vec<LineRequest>,
}

/// One line of a `PlaceOrderRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    /// The product.
    pub sku: String,
    /// How many: 1 to 100.
    pub quantity: u32,
}

/// An order, as the API shows it.
#[derive(Debug, Serialize)]
pub struct OrderResponse {
    /// The order's id.
    pub id: Uuid,
    /// `placed`, `paid`, `shipped` or `cancelled`.
    pub status: String,
    /// What it costs, in cents.
    pub total: Cents,
}

impl OrderResponse {
    fn new(id: Uuid, order: &Order) -> Self {
        Self {
            id,
            status: order.status.to_string(),
            total: order.total,
        }
    }
}
// ANCHOR_END: bodies

// ANCHOR: place
/// The namespace of the order ids derived from idempotency keys: any fixed
/// UUID, chosen once and never changed (changing it would give a retry a
/// new order id).
const ORDER_IDS: Uuid = Uuid::from_u128(0x8c4f_2d7e_51a3_4b6e_9f1d_0a2b_3c4d_5e6f);

async fn place_order(
    State(shop): State<Arc<Shop>>,
    headers: HeaderMap,
    body: Result<Json<PlaceOrderRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<OrderResponse>), ApiError> {
    let key = idempotency_key(&headers)?;
    let Json(request) = body?;
    if request.customer.is_empty() || request.customer.len() > 200 {
        return Err(ApiError::BadCustomer);
    }
    // The same key always gives the same order id, so a retry of a request
    // that did go through finds its order instead of placing a second one.
    let id = match &key {
        Some(key) => Uuid::new_v5(&ORDER_IDS, key.as_bytes()),
        None => Uuid::new_v4(),
    };
    let lines = request
        .lines
        .into_iter()
        .map(|line| Line {
            sku: line.sku,
            quantity: line.quantity,
        })
        .collect();
    match shop.place_order(id, &request.customer, lines).await {
        Ok(order) => Ok((StatusCode::CREATED, Json(OrderResponse::new(id, &order)))),
        Err(ShopError::Rejected(OrderError::AlreadyPlaced)) if key.is_some() => {
            let order = shop.order(id).await?;
            Ok((StatusCode::OK, Json(OrderResponse::new(id, &order))))
        }
        Err(error) => Err(error.into()),
    }
}

/// The `Idempotency-Key` header, if there is one and it is valid.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| ApiError::BadIdempotencyKey)?;
    let valid = (1..=64).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ApiError::BadIdempotencyKey);
    }
    Ok(Some(key.to_string()))
}
// ANCHOR_END: place

async fn order(
    State(shop): State<Arc<Shop>>,
    Path(id): Path<String>,
) -> Result<Json<OrderResponse>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::BadOrderId(id))?;
    let order = shop.order(id).await?;
    Ok(Json(OrderResponse::new(id, &order)))
}

// ANCHOR: history
/// A customer's orders, as the API shows them.
#[derive(Debug, Serialize)]
pub struct HistoryResponse {
    /// Whose orders these are.
    pub customer: String,
    /// Newest first.
    pub orders: Vec<PastOrderResponse>,
}

/// One order of a `HistoryResponse`.
#[derive(Debug, Serialize)]
pub struct PastOrderResponse {
    /// The order's id.
    pub id: Uuid,
    /// `placed`, `paid`, `shipped` or `cancelled`.
    pub status: String,
    /// What it costs, in cents.
    pub total: Cents,
    /// How many items it holds.
    pub items: u32,
}

impl From<PastOrder> for PastOrderResponse {
    fn from(order: PastOrder) -> Self {
        Self {
            id: order.id,
            status: order.status.to_string(),
            total: order.total,
            items: order.items,
        }
    }
}

/// Answers from the read model, which may be a few milliseconds behind the
/// events: an order placed just now can be missing for that long.
async fn customer_orders(
    State(read_model): State<Arc<PostgresProjectionStore>>,
    Path(customer): Path<String>,
) -> Result<Json<HistoryResponse>, ApiError> {
    if customer.is_empty() || customer.len() > 200 {
        return Err(ApiError::BadCustomer);
    }
    let orders = history::orders_of(read_model.as_ref(), &customer).await?;
    Ok(Json(HistoryResponse {
        customer,
        orders: orders.into_iter().map(PastOrderResponse::from).collect(),
    }))
}
// ANCHOR_END: history
