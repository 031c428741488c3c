//! The cart routes: set or remove a product, read the cart. The cart is
//! an event-sourced aggregate; `GET /v1/cart` reads its read model (Redis
//! in front of PostgreSQL). A change answers from the command's own
//! result, without waiting for the read model: `GET` gives
//! read-your-writes itself, by comparing the version the view shows with
//! the stream's and answering from the stream when the view is late.

use axum::Json;
use axum::extract::{Path, State};
use composable_rust::EventMetadata;
use composable_rust::aggregate::RepositoryError;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::json::{ApiJson, Customer};
use crate::domain::cart::{Cart, CartCommand, CartLine, MAX_QUANTITY};
use crate::domain::catalog;
use crate::error::{ApiError, ErrorBody};
pub use crate::projections::cart::{CartItem, CartView};
use crate::projections::cart::{StoredCart, cart_key};
use crate::write::execute;
use composable_rust::prelude::*;

/// `PUT /v1/cart/items/{product_id}` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    /// 1 to 100. (A wide integer, so that -1 or 0 is refused with the
    /// same error as 101.)
    pub quantity: i64,
}

impl From<&Cart> for CartView {
    fn from(cart: &Cart) -> Self {
        Self {
            items: cart
                .lines
                .values()
                .map(|line| CartItem {
                    product_id: line.product_id.clone(),
                    name: line.name.clone(),
                    quantity: line.quantity,
                    price_cents: line.unit_price_cents,
                })
                .collect(),
            total_cents: cart.total_cents(),
        }
    }
}

/// Sets a product's quantity in the caller's cart.
#[utoipa::path(put, path = "/v1/cart/items/{product_id}", tag = "cart",
    params(("product_id" = String, Path, description = "a product id from GET /v1/products")),
    request_body = SetQuantity,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the cart", body = CartView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 404, description = "no such product", body = ErrorBody),
        (status = 422, description = "quantity outside 1..=100", body = ErrorBody),
    ))]
pub async fn set_item(
    State(state): State<AppState>,
    Customer(customer_id): Customer,
    Path(product_id): Path<String>,
    ApiJson(request): ApiJson<SetQuantity>,
) -> Result<Json<CartView>, ApiError> {
    let product = catalog::find(&product_id).ok_or_else(|| ApiError::not_found("product"))?;
    let quantity = u32::try_from(request.quantity)
        .ok()
        .filter(|q| (1..=MAX_QUANTITY).contains(q))
        .ok_or_else(|| ApiError::invalid_field(format!("quantity must be 1 to {MAX_QUANTITY}")))?;
    let line = CartLine {
        product_id: product.product_id,
        name: product.name,
        quantity,
        unit_price_cents: product.price_cents,
    };
    change(&state, customer_id, CartCommand::SetItem(line)).await
}

/// Takes a product out of the caller's cart.
#[utoipa::path(delete, path = "/v1/cart/items/{product_id}", tag = "cart",
    params(("product_id" = String, Path, description = "a product id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the cart", body = CartView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 404, description = "no such product", body = ErrorBody),
    ))]
pub async fn remove_item(
    State(state): State<AppState>,
    Customer(customer_id): Customer,
    Path(product_id): Path<String>,
) -> Result<Json<CartView>, ApiError> {
    if catalog::find(&product_id).is_none() {
        return Err(ApiError::not_found("product"));
    }
    change(&state, customer_id, CartCommand::RemoveItem { product_id }).await
}

/// The caller's cart.
#[utoipa::path(get, path = "/v1/cart", tag = "cart",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the cart", body = CartView),
        (status = 401, description = "no valid token", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Customer(customer_id): Customer,
) -> Result<Json<CartView>, ApiError> {
    let stream = state.cart_stream(customer_id)?;
    let key = cart_key(customer_id);
    // Both reads at once: one key from Redis, one indexed row count.
    let (view, version) = tokio::join!(
        state.cart_views.get_json::<StoredCart>(&key),
        state.events.stream_version(&stream),
    );
    let view = view.map_err(|e| ApiError::backend(&e))?;
    let version = version.map_err(|e| ApiError::backend(&e))?;
    match view {
        Some(stored) if stored.version >= version => Ok(Json(stored.view)),
        None if version == 0 => Ok(Json(CartView::default())),
        // The read model has not caught up with this customer's last
        // write (or was never written): the stream is the truth.
        _ => {
            let cart = state
                .carts
                .load(&stream)
                .await
                .map_err(|e| ApiError::backend(&e))?
                .state;
            Ok(Json(CartView::from(&cart)))
        }
    }
}

async fn change(
    state: &AppState,
    customer_id: uuid::Uuid,
    command: CartCommand,
) -> Result<Json<CartView>, ApiError> {
    let stream = state.cart_stream(customer_id)?;
    match execute(
        &state.carts,
        &stream,
        || command.clone(),
        &EventMetadata::default(),
    )
    .await
    {
        Ok(written) => Ok(Json(CartView::from(&written.state))),
        Err(RepositoryError::Rejected(refusal)) => {
            Err(ApiError::invalid_field(refusal.to_string()))
        }
        Err(RepositoryError::Store(error)) => Err(ApiError::backend(&error)),
    }
}
