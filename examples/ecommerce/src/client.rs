//! A typed client of the shop's HTTP API (reqwest), for the tests, the
//! load test and scripts. An error answer becomes
//! [`ClientError::Api`] with the status and the coded body.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ErrorBody;
use crate::http::cart::{CartView, SetQuantity};
use crate::http::customers::{RegisterRequest, Registered};
use crate::http::orders::{IDEMPOTENCY_KEY, OrderPlaced, PlaceOrderRequest};
use crate::projections::best_sellers::BestSeller;
use crate::projections::order_history::OrderView;
use crate::projections::products::ProductView;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The shop answered with an error.
    #[error("{status}: [{}] {}", body.code, body.message)]
    Api {
        /// The status.
        status: StatusCode,
        /// The coded body.
        body: ErrorBody,
    },
    /// No answer, or one that is not the expected JSON.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

impl ClientError {
    /// The status of an error answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::Http(error) => error.status(),
        }
    }

    /// The code of an error answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { body, .. } => Some(&body.code),
            Self::Http(_) => None,
        }
    }
}

/// A client of one shop, optionally as one customer.
#[derive(Debug, Clone)]
pub struct ShopClient {
    base_url: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl ShopClient {
    /// A client of the shop at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_http(base_url, reqwest::Client::new())
    }

    /// A client sharing `http`'s connection pool.
    pub fn with_http(base_url: impl Into<String>, http: reqwest::Client) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            http,
            token: None,
        }
    }

    /// This client, authenticated with `token`.
    #[must_use]
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A request to `path`, with the token if any (for calls the typed
    /// methods do not cover, e.g. malformed bodies in tests).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<(StatusCode, T), ClientError> {
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok((status, response.json().await?));
        }
        let body = response
            .json::<ErrorBody>()
            .await
            .unwrap_or_else(|error| ErrorBody {
                code: String::new(),
                message: format!("no coded body: {error}"),
            });
        Err(ClientError::Api { status, body })
    }

    /// `POST /v1/customers`; returns the id and token (see
    /// [`with_token`](Self::with_token)).
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn register(&self, name: &str, email: &str) -> Result<Registered, ClientError> {
        let body = RegisterRequest {
            name: name.into(),
            email: email.into(),
        };
        let request = self.request(Method::POST, "/v1/customers").json(&body);
        Ok(self.send(request).await?.1)
    }

    /// `GET /v1/products[?q=]`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn products(&self, query: Option<&str>) -> Result<Vec<ProductView>, ClientError> {
        let mut request = self.request(Method::GET, "/v1/products");
        if let Some(query) = query {
            request = request.query(&[("q", query)]);
        }
        Ok(self.send(request).await?.1)
    }

    /// `GET /v1/products/best-sellers`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn best_sellers(&self) -> Result<Vec<BestSeller>, ClientError> {
        let request = self.request(Method::GET, "/v1/products/best-sellers");
        Ok(self.send(request).await?.1)
    }

    /// `PUT /v1/cart/items/{product_id}`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn add_to_cart(
        &self,
        product_id: &str,
        quantity: i64,
    ) -> Result<CartView, ClientError> {
        let request = self
            .request(Method::PUT, &format!("/v1/cart/items/{product_id}"))
            .json(&SetQuantity { quantity });
        Ok(self.send(request).await?.1)
    }

    /// `DELETE /v1/cart/items/{product_id}`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn remove_from_cart(&self, product_id: &str) -> Result<CartView, ClientError> {
        let request = self.request(Method::DELETE, &format!("/v1/cart/items/{product_id}"));
        Ok(self.send(request).await?.1)
    }

    /// `GET /v1/cart`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn cart(&self) -> Result<CartView, ClientError> {
        Ok(self.send(self.request(Method::GET, "/v1/cart")).await?.1)
    }

    /// `POST /v1/orders` with `idempotency_key`; the status tells a new
    /// order (201) from a replay (200).
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn place_order(
        &self,
        idempotency_key: &str,
        order: &PlaceOrderRequest,
    ) -> Result<(StatusCode, OrderPlaced), ClientError> {
        let request = self
            .request(Method::POST, "/v1/orders")
            .header(IDEMPOTENCY_KEY, idempotency_key)
            .json(order);
        self.send(request).await
    }

    /// `GET /v1/orders/{order_id}`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn order(&self, order_id: Uuid) -> Result<OrderView, ClientError> {
        let request = self.request(Method::GET, &format!("/v1/orders/{order_id}"));
        Ok(self.send(request).await?.1)
    }

    /// `GET /v1/orders`: the caller's orders, newest first.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn orders(&self) -> Result<Vec<OrderView>, ClientError> {
        Ok(self.send(self.request(Method::GET, "/v1/orders")).await?.1)
    }

    /// `GET /v1/orders?q=text`: the caller's orders with a product whose
    /// name contains `text`, newest first.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn orders_matching(&self, text: &str) -> Result<Vec<OrderView>, ClientError> {
        let request = self
            .request(Method::GET, "/v1/orders")
            .query(&[("q", text)]);
        Ok(self.send(request).await?.1)
    }

    /// `GET /metrics` as text.
    ///
    /// # Errors
    ///
    /// [`ClientError::Http`].
    pub async fn metrics(&self) -> Result<String, ClientError> {
        Ok(self
            .request(Method::GET, "/metrics")
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// `GET /openapi.json`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        Ok(self
            .send(self.request(Method::GET, "/openapi.json"))
            .await?
            .1)
    }

    /// The status of `GET /health` or `GET /ready` (`path`).
    ///
    /// # Errors
    ///
    /// [`ClientError::Http`] if there is no answer.
    pub async fn probe(&self, path: &str) -> Result<StatusCode, ClientError> {
        Ok(self.request(Method::GET, path).send().await?.status())
    }
}

/// A valid order body paying with `payment_token`.
pub fn order_request(payment_token: &str) -> PlaceOrderRequest {
    PlaceOrderRequest {
        shipping_address: crate::domain::order::Address {
            name: "Ada Lovelace".into(),
            line1: "12 Analytical Row".into(),
            city: "London".into(),
            postcode: "N1 9GU".into(),
            country: "GB".into(),
        },
        payment_token: payment_token.into(),
    }
}
