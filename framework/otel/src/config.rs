//! [`OtelConfig`]: where the spans go and which are sent.

use std::time::Duration;

use tracing::level_filters::LevelFilter;

/// The collector's OTLP/HTTP port on the local machine, where Jaeger, Tempo
/// and the OpenTelemetry Collector listen by default.
const DEFAULT_ENDPOINT: &str = "http://localhost:4318";

/// How to export spans: the service's name, the collector, the level.
///
/// ```
/// use composable_rust_otel::OtelConfig;
///
/// let config = OtelConfig::new("billing").with_endpoint("http://tempo:4318");
/// assert_eq!(config.traces_url(), "http://tempo:4318/v1/traces");
/// ```
#[derive(Debug, Clone)]
pub struct OtelConfig {
    service_name: String,
    endpoint: String,
    level: LevelFilter,
    timeout: Duration,
}

impl OtelConfig {
    /// Spans of the service `service_name` (the `service.name` resource
    /// attribute a collector groups them by), sent to
    /// `http://localhost:4318`, at level `DEBUG` and above (the framework's
    /// per-event spans are debug spans), with a 10-second export timeout.
    pub fn new(service_name: impl Into<String>) -> Self {
        Self {
            service_name: service_name.into(),
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            level: LevelFilter::DEBUG,
            timeout: Duration::from_secs(10),
        }
    }

    /// The collector's OTLP/HTTP base URL, e.g. `http://otel-collector:4318`
    /// (the same value as `OTEL_EXPORTER_OTLP_ENDPOINT`); spans go to its
    /// `/v1/traces`.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// The most verbose level exported (default `DEBUG`, which the
    /// framework's spans need; `INFO` keeps only your own info spans).
    #[must_use]
    pub fn with_level(mut self, level: LevelFilter) -> Self {
        self.level = level;
        self
    }

    /// How long one export request may take (default 10 seconds).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The service's name.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// The level filter of the exported spans.
    pub fn level(&self) -> LevelFilter {
        self.level
    }

    /// The export timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Where the spans are sent: the endpoint plus `/v1/traces`.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint.trim_end_matches('/'))
    }
}
