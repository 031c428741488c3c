//! `GET /v1/products[?q=text]`: the catalog read model.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::projections::best_sellers::{self, BestSeller};
use crate::projections::products::{ProductView, search};

/// The query string of `GET /v1/products`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct ProductQuery {
    /// Only products whose name contains this text (any case).
    pub q: Option<String>,
}

/// Lists the products, with their stock.
#[utoipa::path(get, path = "/v1/products", tag = "catalog",
    params(ProductQuery),
    responses(
        (status = 200, description = "the products, by id", body = [ProductView]),
        (status = 503, description = "the read model is unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ProductQuery>,
) -> Result<Json<Vec<ProductView>>, ApiError> {
    let products = search(&state.products, query.q.as_deref())
        .await
        .map_err(|e| ApiError::backend(&e))?;
    Ok(Json(products))
}

/// The products with the most units in orders (reserved and not
/// released), most first, at most 10. A Redis read model: it follows the
/// orders within moments.
#[utoipa::path(get, path = "/v1/products/best-sellers", tag = "catalog",
    responses(
        (status = 200, description = "the best-sellers, most first", body = [BestSeller]),
        (status = 503, description = "the read model is unavailable", body = ErrorBody),
    ))]
pub async fn best_sellers(
    State(state): State<AppState>,
) -> Result<Json<Vec<BestSeller>>, ApiError> {
    let top = best_sellers::top(&state.redis, 10)
        .await
        .map_err(|e| ApiError::backend(&e))?;
    Ok(Json(top))
}
