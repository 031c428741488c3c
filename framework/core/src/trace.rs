//! Tracing across processes: the framework's span names, and the hook
//! that carries a trace from one process to the next in event metadata.
//!
//! The framework opens [`tracing`] spans along a command's path. Their
//! names and fields are stable (dashboards and alerts may rely on them):
//!
//! All are debug spans: one per action or event is too many for an
//! info-level log, and a disabled span costs only a check of the level.
//!
//! | span | level | where | fields |
//! |---|---|---|---|
//! | `store.send` | debug | [`Store::send`](crate::Store::send): the reducer runs inside it | `action` (the action's type) |
//! | `store.effect` | debug | each effect task a reducer started, a child of its `store.send` | |
//! | `event_store.append` | debug | an event store's append | `stream_id`, `expected_version`, `events`, `event_type` (of the first event), `correlation_id`, `last_position` |
//! | `event_store.append_to_streams` | debug | an event store's commit to several streams | `streams`, `events`, `first_stream`, `correlation_id` (of the first event), `last_position` |
//! | `bus.publish` | debug | [`EventPublisher`](crate::EventPublisher), one per event published | `topic`, `stream_id`, `event_type`, `event_id`, `position`, `correlation_id` |
//! | `projection.apply` | debug | [`ProjectionManager`](crate::ProjectionManager), one per event applied | `projection`, `stream_id`, `event_type`, `position`, `correlation_id` |
//! | `saga.step` | debug | [`SagaRuntime`](crate::SagaRuntime), one per input handled | `saga`, `saga_id`, `event_type`, `correlation_id` |
//!
//! Within one process a span's parent is the span that was current where
//! it was opened (tracing's usual rule; effect tasks are spawned inside
//! their `store.send`). Across a process boundary there is no "current
//! span": the event is the only thing that travels. So the span that
//! writes an event puts its *trace context* in the event's
//! [`EventMetadata::headers`] (the W3C `traceparent` and `tracestate`
//! headers), and the span that handles the event on the other side takes
//! it as its parent:
//!
//! ```text
//! store.send ─► store.effect ─► event_store.append ══(traceparent)══► bus.publish ══(traceparent)══► projection.apply / saga.step
//! ```
//!
//! Core does not know OpenTelemetry. It only defines the hook,
//! [`TraceContextPropagator`], and calls it; without one installed
//! ([`set_propagator`]) every call is a no-op that costs one atomic load.
//! `composable-rust-otel` installs the W3C implementation.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use tracing::{Instrument, Span};

use crate::event::{EventMetadata, ExpectedVersion, NewEvent, StoredEvent, StreamId};
use crate::event_bus::Topic;
use crate::event_store::{AppendOutcome, EventStoreError, StreamAppend};

/// The W3C Trace Context header that names the parent span:
/// `00-<trace id>-<span id>-<flags>`.
pub const TRACEPARENT: &str = "traceparent";

/// The W3C Trace Context header with vendor-specific trace state.
pub const TRACESTATE: &str = "tracestate";

/// Carries a span's trace context in an event's metadata headers and back.
///
/// Implemented by `composable-rust-otel` (the W3C Trace Context format over
/// OpenTelemetry); install one process-wide with [`set_propagator`].
///
/// # Examples
///
/// A propagator that writes a fixed header (a real one writes the span's
/// trace context):
///
/// ```
/// use std::collections::BTreeMap;
/// use composable_rust_core::trace::{self, TraceContextPropagator};
/// use composable_rust_core::EventMetadata;
///
/// struct Tenant;
///
/// impl TraceContextPropagator for Tenant {
///     fn inject(&self, _span: &tracing::Span, headers: &mut BTreeMap<String, String>) {
///         headers.insert("tenant".into(), "acme".into());
///     }
///     fn set_parent(&self, _span: &tracing::Span, _headers: &BTreeMap<String, String>) {}
/// }
///
/// let mut metadata = EventMetadata::default();
/// Tenant.inject(&tracing::Span::none(), &mut metadata.headers);
/// assert_eq!(metadata.headers["tenant"], "acme");
/// # let _ = trace::propagator();
/// ```
pub trait TraceContextPropagator: Send + Sync + 'static {
    /// Writes `span`'s trace context into `headers`, replacing any there.
    fn inject(&self, span: &Span, headers: &mut BTreeMap<String, String>);

    /// Makes the trace context found in `headers`, if any, the parent of
    /// `span` (call it before the span is entered).
    fn set_parent(&self, span: &Span, headers: &BTreeMap<String, String>);
}

impl fmt::Debug for dyn TraceContextPropagator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn TraceContextPropagator")
    }
}

/// The propagator used while none is installed: does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopPropagator;

impl TraceContextPropagator for NoopPropagator {
    fn inject(&self, _span: &Span, _headers: &mut BTreeMap<String, String>) {}
    fn set_parent(&self, _span: &Span, _headers: &BTreeMap<String, String>) {}
}

static PROPAGATOR: OnceLock<Box<dyn TraceContextPropagator>> = OnceLock::new();

/// Installs `propagator` for the whole process, like a tracing subscriber
/// or a metrics recorder. Returns `false`, and changes nothing, when one
/// was installed before: the first one stays.
pub fn set_propagator(propagator: impl TraceContextPropagator) -> bool {
    PROPAGATOR.set(Box::new(propagator)).is_ok()
}

/// The installed propagator, or [`NoopPropagator`].
pub fn propagator() -> &'static dyn TraceContextPropagator {
    match PROPAGATOR.get() {
        Some(propagator) => propagator.as_ref(),
        None => &NoopPropagator,
    }
}

/// Writes `span`'s trace context into `metadata`, so whoever handles the
/// event continues this trace. Does nothing when no propagator is
/// installed or `span` is disabled (no subscriber records it): then the
/// metadata keeps the context it had, and the trace continues from there.
pub fn inject(span: &Span, metadata: &mut EventMetadata) {
    if let Some(propagator) = PROPAGATOR.get()
        && !span.is_disabled()
    {
        propagator.inject(span, &mut metadata.headers);
    }
}

/// Makes the trace context carried in `metadata` the parent of `span`, so
/// handling an event written by another process joins that process's
/// trace. Does nothing without a propagator, a context or an enabled span.
pub fn continue_from(span: &Span, metadata: &EventMetadata) {
    if let Some(propagator) = PROPAGATOR.get()
        && !span.is_disabled()
        && metadata.headers.contains_key(TRACEPARENT)
    {
        propagator.set_parent(span, &metadata.headers);
    }
}

/// Runs an event store's append inside the `event_store.append` span,
/// after writing the span's trace context into every event's metadata, and
/// records the outcome's last position on the span. Backends call it in
/// their [`EventStore::append`](crate::EventStore::append) with the append
/// itself as `append`, so every backend's appends look the same in a trace.
pub async fn append_traced<F, Fut>(
    stream_id: &StreamId,
    expected: ExpectedVersion,
    mut events: Vec<NewEvent>,
    append: F,
) -> Result<AppendOutcome, EventStoreError>
where
    F: FnOnce(Vec<NewEvent>) -> Fut,
    Fut: Future<Output = Result<AppendOutcome, EventStoreError>>,
{
    let first = events.first();
    let span = tracing::debug_span!(
        "event_store.append",
        %stream_id,
        expected_version = %expected,
        events = events.len(),
        event_type = first.map(|event| tracing::field::display(&event.event_type)),
        correlation_id = first
            .and_then(|event| event.metadata.correlation_id)
            .map(tracing::field::display),
        last_position = tracing::field::Empty,
    );
    if !span.is_disabled() {
        for event in &mut events {
            inject(&span, &mut event.metadata);
        }
    }
    let result = append(events).instrument(span.clone()).await;
    if let Ok(outcome) = &result {
        span.record(
            "last_position",
            tracing::field::display(outcome.last_position),
        );
    }
    result
}

/// [`append_traced`] for an
/// [`append_to_streams`](crate::EventStore::append_to_streams): one
/// `event_store.append_to_streams` span for the whole commit, whose trace
/// context goes into every event of every share.
pub async fn append_to_streams_traced<F, Fut>(
    mut appends: Vec<StreamAppend>,
    append: F,
) -> Result<Vec<AppendOutcome>, EventStoreError>
where
    F: FnOnce(Vec<StreamAppend>) -> Fut,
    Fut: Future<Output = Result<Vec<AppendOutcome>, EventStoreError>>,
{
    let first = appends.first().and_then(|share| share.events.first());
    let span = tracing::debug_span!(
        "event_store.append_to_streams",
        streams = appends.len(),
        events = appends
            .iter()
            .map(|share| share.events.len())
            .sum::<usize>(),
        first_stream = appends
            .first()
            .map(|share| tracing::field::display(&share.stream_id)),
        correlation_id = first
            .and_then(|event| event.metadata.correlation_id)
            .map(tracing::field::display),
        last_position = tracing::field::Empty,
    );
    if !span.is_disabled() {
        for event in appends.iter_mut().flat_map(|share| &mut share.events) {
            inject(&span, &mut event.metadata);
        }
    }
    let result = append(appends).instrument(span.clone()).await;
    if let Ok(outcomes) = &result
        && let Some(last) = outcomes.last()
    {
        span.record("last_position", tracing::field::display(last.last_position));
    }
    result
}

/// One `bus.publish` span per event, each a child of the trace context the
/// event carries (its append's), with the span's own context written into
/// the event: a consumer then continues from the publish. Keep the spans
/// until the events are published.
pub(crate) fn publish_spans(topic: &Topic, events: &mut [StoredEvent]) -> Vec<Span> {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return Vec::new();
    }
    events
        .iter_mut()
        .map(|event| {
            let span = tracing::debug_span!(
                "bus.publish",
                %topic,
                stream_id = %event.stream_id,
                event_type = %event.event_type,
                event_id = %event.event_id,
                position = %event.position,
                correlation_id = event.metadata.correlation_id.map(tracing::field::display),
            );
            continue_from(&span, &event.metadata);
            inject(&span, &mut event.metadata);
            span
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_propagator_nothing_is_written() {
        let mut metadata = EventMetadata::default();
        inject(&Span::none(), &mut metadata);
        continue_from(&Span::none(), &metadata);
        assert!(metadata.headers.is_empty());
    }
}
