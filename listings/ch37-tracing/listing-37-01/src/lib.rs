//! Listing 37-1: exporting the framework's spans to an OTLP collector, and
//! continuing a trace in a consumer of your own.

use composable_rust::BusMessage;
use composable_rust::otel::{OtelConfig, OtelError, OtelGuard, W3cPropagator};
use composable_rust::trace;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

// ANCHOR: config
/// Where the spans go: `OTEL_EXPORTER_OTLP_ENDPOINT` when it is set (the
/// variable every OpenTelemetry SDK reads), else a collector on this
/// machine. Jaeger, Grafana Tempo and the OpenTelemetry Collector all
/// take OTLP over HTTP on port 4318.
pub fn telemetry_config(service: &str) -> OtelConfig {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .unwrap_or_else(|_| "http://localhost:4318".to_owned());
    OtelConfig::new(service).with_endpoint(endpoint)
}
// ANCHOR_END: config

// ANCHOR: install
/// Logs at INFO to stdout, and the framework's spans (DEBUG) to the
/// collector. Call it once, inside the tokio runtime; keep the guard.
pub fn init_telemetry(service: &str) -> Result<OtelGuard, OtelError> {
    let (otel, guard) = composable_rust::otel::layer(&telemetry_config(service))?;
    let logs =
        tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::registry()
        .with(otel)
        .with(logs)
        .try_init()
        .map_err(|_| OtelError::AlreadyInstalled {
            what: "a global tracing subscriber",
        })?;
    // Without it, spans stay in this process: events carry no traceparent.
    W3cPropagator::new().install()?;
    Ok(guard)
}
// ANCHOR_END: install

// ANCHOR: consume
/// A consumer of your own (not a projection or a saga): its span joins the
/// trace of the command that wrote the event, through the event's
/// `traceparent`.
pub async fn send_welcome_email(message: &BusMessage) {
    let span = tracing::info_span!(
        "email.welcome",
        stream_id = %message.event.stream_id,
        event_id = %message.event.event_id,
    );
    trace::continue_from(&span, &message.event.metadata);
    let _entered = span.enter();
    tracing::info!("sending the welcome email");
}
// ANCHOR_END: consume

#[cfg(test)]
mod tests {
    use super::*;

    // ANCHOR: test
    #[test]
    fn the_endpoint_comes_from_the_environment_or_the_local_collector() {
        let config = telemetry_config("billing");
        let expected = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Ok(endpoint) => format!("{}/v1/traces", endpoint.trim_end_matches('/')),
            Err(_) => "http://localhost:4318/v1/traces".to_owned(),
        };
        assert_eq!(config.traces_url(), expected);
        assert_eq!(config.service_name(), "billing");
    }

    #[test]
    fn the_exporter_needs_the_tokio_runtime() {
        let error = init_telemetry("billing").unwrap_err();
        assert!(matches!(error, OtelError::NoRuntime), "{error}");
        assert!(error.to_string().starts_with("[CR-E0060]"), "{error}");
    }
    // ANCHOR_END: test
}
