//! What the API answers when a request fails: a status and a JSON body
//! `{"code": ..., "message": ...}`. The status tells an HTTP client what
//! kind of failure it is; the code tells a person or a program which one.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use composable_rust::prelude::*;
use composable_rust::{EventStoreError, ProjectionError};
use serde::Serialize;

use crate::order::OrderError;
use crate::shop::ShopError;

// ANCHOR: error
/// Why the API refused a request; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The shop refused or failed.
    #[error(transparent)]
    Shop(#[from] ShopError),
    /// The body is not JSON of the expected shape, or is too large.
    #[error("the request body was refused: {0}; send a JSON object of the documented fields")]
    Body(#[from] JsonRejection),
    /// The `Idempotency-Key` header is malformed.
    #[error(
        "the Idempotency-Key header must be 1 to 64 letters, digits, `-` or `_`; \
         send a valid key, or none"
    )]
    BadIdempotencyKey,
    /// The customer is empty or too long.
    #[error("the customer must be 1 to 200 characters")]
    BadCustomer,
    /// The path names no possible order.
    #[error("there is no order `{0}`; order ids are UUIDs")]
    BadOrderId(String),
    /// The read model could not be read; the error keeps the framework's
    /// `CR-E` code.
    #[error(transparent)]
    ReadModel(#[from] ProjectionError),
}

impl ApiError {
    /// The HTTP status that says what kind of failure this is.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Shop(ShopError::NotFound(_)) | ApiError::BadOrderId(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Shop(ShopError::Rejected(
                OrderError::AlreadyPlaced | OrderError::NotAllowed { .. },
            )) => StatusCode::CONFLICT,
            ApiError::Shop(ShopError::Rejected(_)) | ApiError::BadCustomer => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Shop(ShopError::Store(EventStoreError::WrongExpectedVersion { .. })) => {
                StatusCode::CONFLICT
            }
            ApiError::Shop(ShopError::Store(error)) if error.is_transient() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Shop(ShopError::Store(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::ReadModel(error) if error.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ReadModel(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Body(rejection) => rejection.status(),
            ApiError::BadIdempotencyKey => StatusCode::BAD_REQUEST,
        }
    }

    /// The stable code: the shop's own, or the framework's.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Shop(error) => error.code(),
            ApiError::Body(_) => "STORE-E0008",
            ApiError::BadIdempotencyKey => "STORE-E0009",
            ApiError::BadCustomer => "STORE-E0010",
            ApiError::BadOrderId(_) => "STORE-E0007",
            ApiError::ReadModel(error) => error.code().as_str(),
        }
    }
}
// ANCHOR_END: error

// ANCHOR: response
/// The JSON body of an error response.
#[derive(Debug, Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // A server error's details are for the logs, not for the client.
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "the shop failed to handle the request; report the code".to_string()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            code: self.code(),
            message,
        };
        (status, Json(body)).into_response()
    }
}
// ANCHOR_END: response
