//! [`W3cPropagator`]: core's trace-context hook over OpenTelemetry's W3C
//! Trace Context propagator.

use std::collections::BTreeMap;

use composable_rust_core::trace::{self, TraceContextPropagator as CoreHook};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::OtelError;

/// Writes and reads the `traceparent` and `tracestate` headers of event
/// metadata ([W3C Trace Context](https://www.w3.org/TR/trace-context/)),
/// through the OpenTelemetry context of `tracing` spans.
#[derive(Debug, Default)]
pub struct W3cPropagator {
    inner: TraceContextPropagator,
}

impl W3cPropagator {
    /// A W3C Trace Context propagator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs it as the framework's propagator (once per process);
    /// [`install`](crate::install) calls this for you.
    ///
    /// # Errors
    ///
    /// [`OtelError::AlreadyInstalled`] when a propagator was installed
    /// before.
    pub fn install(self) -> Result<(), OtelError> {
        if trace::set_propagator(self) {
            Ok(())
        } else {
            Err(OtelError::AlreadyInstalled {
                what: "a trace context propagator",
            })
        }
    }
}

impl CoreHook for W3cPropagator {
    fn inject(&self, span: &Span, headers: &mut BTreeMap<String, String>) {
        self.inner
            .inject_context(&span.context(), &mut HeaderMap(headers));
    }

    fn set_parent(&self, span: &Span, headers: &BTreeMap<String, String>) {
        let parent = self.inner.extract(&Headers(headers));
        // Fails only for a span no OpenTelemetry layer records: then there
        // is nothing to link.
        let _ = span.set_parent(parent);
    }
}

/// Metadata headers as OpenTelemetry's injector.
struct HeaderMap<'a>(&'a mut BTreeMap<String, String>);

impl Injector for HeaderMap<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// Metadata headers as OpenTelemetry's extractor.
struct Headers<'a>(&'a BTreeMap<String, String>);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}
