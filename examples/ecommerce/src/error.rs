//! Errors: [`ShopError`] when the shop cannot start, [`ApiError`] for an
//! HTTP request (`{"code", "message"}` with a status). An error response
//! means nothing was written.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use composable_rust::CodedError;
use serde::{Deserialize, Serialize};

use crate::codes;
use crate::config::ConfigError;

/// Why the shop could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A backend or the listener failed at startup (its own code inside).
    #[error("[{code}] the shop could not start: {what}: {source}", code = codes::STARTUP_FAILED)]
    Startup {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ShopError {
    /// A startup failure while doing `what`.
    pub fn startup(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Startup {
            what,
            source: source.into(),
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// `SHOP-E....`, or the framework's `CR-E....`.
    pub code: String,
    /// What happened and what to do.
    pub message: String,
}

/// An HTTP error: a status and an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.to_owned(),
                message: message.into(),
            },
        }
    }

    /// A field out of range (counted as `invalid`).
    pub fn invalid_field(message: impl Into<String>) -> Self {
        crate::telemetry::rejected("invalid");
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::INVALID_FIELD,
            message,
        )
    }

    /// Nothing the caller may see here.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            format!("{what} not found"),
        )
    }

    /// A backend failed: the framework's code when it has one, 503 when
    /// retrying may help, 500 otherwise.
    pub fn backend(error: &(dyn CodedError + 'static)) -> Self {
        tracing::error!(code = %error.code(), error = %error, "backend failure");
        let status = if error.is_transient() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let advice = if error.is_transient() {
            "nothing was written: retry later"
        } else {
            "nothing was written, and retrying will not help: report the code"
        };
        Self::new(status, error.code().as_str(), format!("{error}; {advice}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
