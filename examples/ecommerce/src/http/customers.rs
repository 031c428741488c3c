//! `POST /v1/customers`: registration. The server draws the customer id
//! and answers with a bearer token for it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use composable_rust::prelude::*;
use composable_rust::{EventMetadata, ExpectedVersion, NewEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use super::json::{ApiJson, text};
use crate::domain::customer::{CustomerEvent, customer_stream};
use crate::error::{ApiError, ErrorBody};

/// `POST /v1/customers` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 1 to 100 characters.
    pub name: String,
    /// 3 to 254 characters with an `@`.
    pub email: String,
}

/// `POST /v1/customers` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registered {
    /// The new customer's id.
    pub customer_id: Uuid,
    /// A bearer token for it, valid for 24 hours.
    pub token: String,
}

/// Registers a customer.
#[utoipa::path(post, path = "/v1/customers", tag = "customers",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "registered", body = Registered),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 422, description = "a field out of range", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    text("name", &request.name, 100)?;
    text("email", &request.email, 254)?;
    if request.email.len() < 3 || !request.email.contains('@') {
        return Err(ApiError::invalid_field("email must be an e-mail address"));
    }
    let customer_id = Uuid::new_v4();
    let event = CustomerEvent::Registered {
        customer_id,
        name: request.name,
        email: request.email,
    };
    let stream = customer_stream(customer_id).map_err(|e| ApiError::backend(&e))?;
    let event = NewEvent::from_event(&event)
        .map_err(|e| ApiError::backend(&e))?
        .with_metadata(EventMetadata::default());
    state
        .events
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
        .map_err(|e| ApiError::backend(&e))?;
    let token = state.tokens.issue(customer_id, chrono::Utc::now());
    Ok((StatusCode::CREATED, Json(Registered { customer_id, token })))
}
