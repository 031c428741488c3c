//! [`install`] and [`layer`]: the OTLP exporter behind a batch span
//! processor, as a `tracing` layer; [`OtelGuard`] flushes it.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::runtime::Handle;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

use crate::client::RuntimeClient;
use crate::{OtelConfig, OtelError, W3cPropagator};

/// The OpenTelemetry layer [`layer`] returns, filtered to the configured
/// level.
pub type OtelLayer<S> = Box<dyn Layer<S> + Send + Sync + 'static>;

/// Sets up OTLP export for the whole process: a global tracing subscriber
/// with the OpenTelemetry layer only, [`W3cPropagator`] as the framework's
/// trace context propagator, and the SDK's tracer provider as
/// OpenTelemetry's global one (for your own OpenTelemetry code). Call it
/// once, inside the tokio runtime, at start-up; keep the guard and
/// [`shutdown`](OtelGuard::shutdown) it at the end.
///
/// # Errors
///
/// [`OtelError::NoRuntime`], [`OtelError::Exporter`], and
/// [`OtelError::AlreadyInstalled`] when a global subscriber or a propagator
/// was set before (then compose [`layer`] with your subscriber instead).
pub fn install(config: OtelConfig) -> Result<OtelGuard, OtelError> {
    let (layer, guard) = layer(&config)?;
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).map_err(
        |_| OtelError::AlreadyInstalled {
            what: "a global tracing subscriber",
        },
    )?;
    W3cPropagator::new().install()?;
    opentelemetry::global::set_tracer_provider(guard.provider.clone());
    Ok(guard)
}

/// The OpenTelemetry layer alone, to add to your own subscriber (next to a
/// `fmt` layer, say), and the guard that flushes it. Install the
/// propagator yourself with [`W3cPropagator::install`], or spans will not
/// cross processes.
///
/// # Errors
///
/// [`OtelError::NoRuntime`] outside a tokio runtime;
/// [`OtelError::Exporter`] when the endpoint is not a URL.
pub fn layer<S>(config: &OtelConfig) -> Result<(OtelLayer<S>, OtelGuard), OtelError>
where
    S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    let runtime = Handle::try_current().map_err(|_| OtelError::NoRuntime)?;
    let url = config.traces_url();
    let client = RuntimeClient::new(
        HyperClient::with_default_connector(config.timeout(), None),
        runtime,
    );
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.as_str())
        .with_timeout(config.timeout())
        .build()
        .map_err(|error| OtelError::Exporter {
            url: url.clone(),
            reason: error.to_string(),
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name().to_owned())
                .build(),
        )
        .build();
    let tracer = provider.tracer("composable-rust");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(config.level())
        .boxed();
    Ok((layer, OtelGuard { provider }))
}

/// Keeps the exporter; [`flush`](Self::flush) sends what is buffered,
/// [`shutdown`](Self::shutdown) sends it and stops.
#[derive(Debug)]
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl OtelGuard {
    /// Sends every span ended so far and waits for the collector's answer.
    ///
    /// # Errors
    ///
    /// [`OtelError::ExportFailed`] when the collector did not take them.
    pub async fn flush(&self) -> Result<(), OtelError> {
        let provider = self.provider.clone();
        // The SDK blocks while it exports, and the export runs on this
        // runtime: block a thread of the blocking pool, not this one.
        run_blocking(move || provider.force_flush()).await
    }

    /// Sends what is buffered and stops exporting.
    ///
    /// # Errors
    ///
    /// [`OtelError::ExportFailed`] when the collector did not take the
    /// last spans.
    pub async fn shutdown(self) -> Result<(), OtelError> {
        let provider = self.provider;
        run_blocking(move || provider.shutdown()).await
    }
}

async fn run_blocking(
    work: impl FnOnce() -> opentelemetry_sdk::error::OTelSdkResult + Send + 'static,
) -> Result<(), OtelError> {
    let failed = |reason: String| OtelError::ExportFailed { reason };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| failed(error.to_string()))?
        .map_err(|error| failed(error.to_string()))
}
