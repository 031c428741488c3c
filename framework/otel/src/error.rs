//! Errors of the OpenTelemetry crate, with stable codes `CR-E0060` to
//! `CR-E0064` (in core's range: tracing is a concern of every crate).

use composable_rust_core::error::coded_error;

/// The codes owned by `composable-rust-otel`.
pub mod codes {
    composable_rust_core::error_codes! {
        /// The exporter was set up outside a tokio runtime.
        OTEL_NO_RUNTIME = ("CR-E0060", "OpenTelemetry set up outside a tokio runtime");
        /// The OTLP exporter could not be built from the configuration.
        OTEL_EXPORTER = ("CR-E0061", "the OTLP exporter could not be built");
        /// A global tracing subscriber or trace propagator was already set.
        OTEL_ALREADY_INSTALLED = ("CR-E0062", "a tracing subscriber or propagator is already installed");
        /// Spans could not be sent to the collector.
        OTEL_EXPORT_FAILED = ("CR-E0063", "spans could not be exported to the collector");
    }
}

/// What can go wrong setting up or flushing the export. Its `Display`
/// starts with the code and says what to do.
#[coded_error]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OtelError {
    /// [`install`](crate::install) or [`layer`](crate::layer) was called
    /// outside a tokio runtime (`CR-E0060`).
    #[code(codes::OTEL_NO_RUNTIME, configuration)]
    #[error(
        "OpenTelemetry was set up outside a tokio runtime: the exporter sends its requests \
         on the runtime it was set up in; call `install` (or `layer`) from inside \
         `#[tokio::main]` or a `Runtime::block_on`"
    )]
    NoRuntime,
    /// The exporter refused the configuration, e.g. an endpoint that is
    /// not a URL (`CR-E0061`).
    #[code(codes::OTEL_EXPORTER, configuration)]
    #[error(
        "the OTLP exporter could not be built for {url}: {reason}; the endpoint is the \
         collector's OTLP/HTTP base URL, e.g. http://localhost:4318"
    )]
    Exporter {
        /// The traces URL it was built for.
        url: String,
        /// What the exporter reported.
        reason: String,
    },
    /// A global tracing subscriber, or another trace propagator, was
    /// installed before (`CR-E0062`).
    #[code(codes::OTEL_ALREADY_INSTALLED, configuration)]
    #[error(
        "{what} was already installed in this process; install OpenTelemetry once, at \
         start-up, or add `composable_rust_otel::layer` to your own subscriber and call \
         `W3cPropagator::install`"
    )]
    AlreadyInstalled {
        /// What was there already.
        what: &'static str,
    },
    /// The collector did not take the spans (`CR-E0063`); they are dropped,
    /// the service is not affected.
    #[code(codes::OTEL_EXPORT_FAILED, transient)]
    #[error(
        "spans could not be exported to the collector: {reason}; check that the collector \
         listens at the configured endpoint (OTLP over HTTP, port 4318 by default)"
    )]
    ExportFailed {
        /// What the exporter reported.
        reason: String,
    },
}
