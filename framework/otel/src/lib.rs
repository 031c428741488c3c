//! # composable-rust-otel
//!
//! OpenTelemetry for Composable Rust: sends the framework's spans to any
//! OTLP collector (Jaeger, Grafana Tempo, the OpenTelemetry Collector, a
//! vendor's agent) and carries the W3C trace context in event metadata, so
//! one command is one trace across every process its events reach.
//!
//! ```no_run
//! # #[tokio::main]
//! # async fn main() -> Result<(), composable_rust_otel::OtelError> {
//! use composable_rust_otel::OtelConfig;
//!
//! let telemetry = composable_rust_otel::install(
//!     OtelConfig::new("billing").with_endpoint("http://localhost:4318"),
//! )?;
//! // ... run the service ...
//! telemetry.shutdown().await?; // sends the spans still buffered
//! # Ok(())
//! # }
//! ```
//!
//! [`install`] does three things: it builds an OTLP exporter (HTTP with
//! protobuf bodies, to `{endpoint}/v1/traces`) behind a batch span
//! processor, sets a global tracing subscriber with the
//! `tracing-opentelemetry` layer, and installs [`W3cPropagator`] as core's
//! [`TraceContextPropagator`](composable_rust_core::trace::TraceContextPropagator).
//! To combine the layer with your own (a `fmt` layer, filters), use
//! [`layer`] and [`W3cPropagator::install`] instead. The span names and
//! fields are listed in [`composable_rust_core::trace`].
#![deny(missing_docs)]

mod client;
mod config;
mod error;
mod install;
mod propagator;

pub use config::OtelConfig;
pub use error::{OtelError, codes};
pub use install::{OtelGuard, OtelLayer, install, layer};
pub use propagator::W3cPropagator;
