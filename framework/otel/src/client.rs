//! The HTTP client the exporter sends with: hyper, on the application's
//! tokio runtime.
//!
//! OpenTelemetry's batch span processor exports from a thread of its own,
//! outside any runtime, where hyper cannot run. Instead of a second
//! runtime (what reqwest's blocking client brings), each request is
//! spawned on the runtime the exporter was set up in and awaited from
//! there: a `JoinHandle` can be awaited from any thread.

use async_trait::async_trait;
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use tokio::runtime::Handle;

/// hyper's client, run on `runtime`.
#[derive(Debug, Clone)]
pub(crate) struct RuntimeClient {
    inner: HyperClient,
    runtime: Handle,
}

impl RuntimeClient {
    pub(crate) fn new(inner: HyperClient, runtime: Handle) -> Self {
        Self { inner, runtime }
    }
}

#[async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let inner = self.inner.clone();
        self.runtime
            .spawn(async move { inner.send_bytes(request).await })
            .await?
    }
}
