//! Extractors that turn every bad request into a coded error: [`ApiJson`]
//! (malformed, unknown fields, too large) and [`Customer`] (the bearer
//! token). Handlers never see a request they have to reject by hand for
//! its shape, only for its values.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::AppState;
use crate::codes;
use crate::error::ApiError;
use crate::telemetry;

/// A JSON body of type `T` (whose serde derive denies unknown fields).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

/// The coded error of a body axum's `Json` refused.
fn json_rejection(rejection: &JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        telemetry::rejected("body_too_large");
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
            "the request body is larger than SHOP_MAX_BODY_BYTES; send less",
        );
    }
    telemetry::rejected("invalid");
    let status = match rejection {
        JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(
        status,
        codes::INVALID_BODY,
        format!(
            "the body is not what this route takes: {}; see /openapi.json",
            rejection.body_text()
        ),
    )
}

/// The authenticated customer (from `Authorization: Bearer <token>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Customer(pub Uuid);

impl FromRequestParts<AppState> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let verified = token.map(|token| state.tokens.verify(token.trim(), chrono::Utc::now()));
        match verified {
            Some(Ok(customer_id)) => Ok(Self(customer_id)),
            other => {
                if let Some(Err(why)) = other {
                    tracing::debug!(%why, "bearer token refused");
                }
                telemetry::rejected("unauthenticated");
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    codes::UNAUTHENTICATED,
                    "a valid bearer token is required (Authorization: Bearer <token> from POST /v1/customers); it may have expired",
                ))
            }
        }
    }
}

/// Checks that `value` (field `field`) has 1 to `max` characters.
///
/// # Errors
///
/// [`ApiError::invalid_field`].
pub fn text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let length = value.trim().chars().count();
    if length == 0 || value.chars().count() > max {
        return Err(ApiError::invalid_field(format!(
            "{field} must have 1 to {max} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}
