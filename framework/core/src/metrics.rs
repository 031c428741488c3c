//! Every metric the framework reports, in one place: the names (as
//! constants the instrumented code uses), their kinds and labels
//! ([`CATALOG`]), and the small recording helpers the backends share.
//!
//! The framework reports through the [`metrics`](https://docs.rs/metrics)
//! facade: nothing is collected until the application installs a recorder
//! (e.g. `metrics-exporter-prometheus`), and a metric reported before that
//! is lost, so install it first thing in `main`.
//!
//! # Naming scheme
//!
//! `composable_<area>_<what>[_<unit>]`: every name starts with
//! `composable_`, then the component (`event_store`, `store`, `bus`,
//! `publisher`, `saga`, `projection`, `circuit`, `bulkhead`); counters
//! end in `_total`, durations are histograms in seconds ending in
//! `_seconds`, and a gauge names what it counts (`_messages`,
//! `_events_behind`). Labels are few and bounded:
//! `backend` (one of [`BACKEND_IN_MEMORY`], [`BACKEND_POSTGRES`],
//! [`BACKEND_REDIS`], [`BACKEND_KAFKA`]), a component's name (`store`,
//! `saga`, `projection`, `publisher`), a topic and a consumer group; never
//! an id.
//!
//! Histograms are rendered as summaries by Prometheus exporters unless they
//! are given buckets: give every `_seconds` metric [`DURATION_BUCKETS`]
//! (`PrometheusBuilder::set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)`)
//! so dashboards can compute quantiles over many instances.

use std::future::Future;
use std::time::Instant;

use crate::event_bus::BusMessage;
use crate::event_store::EventStoreError;

pub use crate::projection::blue_green::{
    REBUILD_EVENTS_APPLIED, REBUILD_EVENTS_EXPECTED, REBUILD_EVENTS_PER_SECOND,
    REBUILD_SECONDS_LEFT,
};
pub use crate::projection::cached::{CACHE_ERRORS, CACHE_HITS, CACHE_MISSES};
pub use crate::projection::manager::metrics::{
    APPLY_ERRORS as PROJECTION_APPLY_ERRORS, BACKEND_ERRORS as PROJECTION_BACKEND_ERRORS,
    BATCH_SECONDS as PROJECTION_BATCH_SECONDS, DEAD_LETTERS as PROJECTION_DEAD_LETTERS,
    EVENTS_APPLIED as PROJECTION_EVENTS_APPLIED, EVENTS_BEHIND as PROJECTION_EVENTS_BEHIND,
    HEALTH as PROJECTION_HEALTH, SECONDS_BEHIND as PROJECTION_SECONDS_BEHIND,
};
pub use crate::resilience::metrics::{
    BULKHEAD_REJECTED, CIRCUIT_REJECTED, CIRCUIT_STATE, CIRCUIT_TRANSITIONS,
};

/// `backend` label of the in-memory event store and bus.
pub const BACKEND_IN_MEMORY: &str = "in_memory";
/// `backend` label of the PostgreSQL event store.
pub const BACKEND_POSTGRES: &str = "postgres";
/// `backend` label of the Redis Streams bus.
pub const BACKEND_REDIS: &str = "redis";
/// `backend` label of the Kafka-protocol bus.
pub const BACKEND_KAFKA: &str = "kafka";

/// Histogram buckets (seconds) suited to every `_seconds` metric: 100 µs
/// to 10 s.
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

// ---- event store -----------------------------------------------------------

/// Histogram: time one append took, in seconds, whatever its outcome;
/// labels `backend`, `outcome` (`ok`, `conflict`, `error`).
pub const EVENT_STORE_APPEND_SECONDS: &str = "composable_event_store_append_duration_seconds";
/// Counter: events appended (committed); label `backend`.
pub const EVENT_STORE_EVENTS_APPENDED: &str = "composable_event_store_events_appended_total";
/// Counter: appends refused because the stream was not at the expected
/// version (optimistic concurrency conflicts); label `backend`.
pub const EVENT_STORE_CONFLICTS: &str = "composable_event_store_conflicts_total";
/// Histogram: time one read took, in seconds; labels `backend`,
/// `operation` (`load_stream`, `read_all`, `replay`).
pub const EVENT_STORE_READ_SECONDS: &str = "composable_event_store_read_duration_seconds";

// ---- store -----------------------------------------------------------------

/// Counter: actions a [`Store`](crate::Store) reduced (sent, or fed back
/// by effects); label `store` (the reducer's type name).
pub const STORE_ACTIONS: &str = "composable_store_actions_total";
/// Histogram: how long each effect a reducer returned ran, in seconds
/// (until it finished or was cancelled); label `store`.
pub const STORE_EFFECT_SECONDS: &str = "composable_store_effect_duration_seconds";
/// Gauge: effects of the store running now; label `store`.
pub const STORE_EFFECTS_IN_FLIGHT: &str = "composable_store_effects_in_flight";

// ---- event bus -------------------------------------------------------------

/// Counter: messages published; labels `backend`, `topic`.
pub const BUS_PUBLISHED: &str = "composable_bus_messages_published_total";
/// Counter: messages delivered to a consumer (first deliveries and
/// redeliveries); labels `backend`, `topic`, `group`.
pub const BUS_CONSUMED: &str = "composable_bus_messages_consumed_total";
/// Counter: messages acknowledged; labels `backend`, `topic`, `group`.
pub const BUS_ACKED: &str = "composable_bus_messages_acked_total";
/// Counter: deliveries of a message delivered before (its consumer did not
/// acknowledge it in time); labels `backend`, `topic`, `group`.
pub const BUS_REDELIVERED: &str = "composable_bus_messages_redelivered_total";
/// Counter: messages moved to the dead-letter topic after too many
/// deliveries; labels `backend`, `topic` (the original), `group`.
pub const BUS_DEAD_LETTERED: &str = "composable_bus_messages_dead_lettered_total";
/// Gauge: messages delivered to the group and not acknowledged yet, as
/// of the last [`EventBus::pending`](crate::EventBus::pending) call;
/// labels `backend`, `topic`, `group`.
pub const BUS_PENDING: &str = "composable_bus_messages_pending";
/// Gauge: messages of the subscribed topics not yet delivered to the
/// group, as of the last
/// [`Subscription::backlog`](crate::Subscription::backlog) call (a
/// bus-fed projection calls it for its lag); labels `backend`, `group`.
pub const BUS_CONSUMER_LAG: &str = "composable_bus_consumer_lag_messages";

// ---- publisher -------------------------------------------------------------

/// Gauge: events in the event store after the publisher's checkpoint
/// (not yet on the bus), measured after every page; label `publisher`.
pub const PUBLISHER_EVENTS_BEHIND: &str = "composable_publisher_events_behind";

// ---- sagas -----------------------------------------------------------------

/// Counter: saga instances started (first step recorded); label `saga`
/// (the saga's kind).
pub const SAGA_STARTED: &str = "composable_saga_started_total";
/// Counter: sagas that ended with every step done; label `saga`.
pub const SAGA_COMPLETED: &str = "composable_saga_completed_total";
/// Counter: sagas that ended compensated; label `saga`.
pub const SAGA_COMPENSATED: &str = "composable_saga_compensated_total";
/// Counter: timeouts that fired and made a saga take a step; label `saga`.
pub const SAGA_TIMED_OUT: &str = "composable_saga_timeouts_total";
/// Gauge: commands recorded and not delivered yet, by this process's
/// runtime (commands found by `resume` count from then on); label `saga`.
pub const SAGA_PENDING_COMMANDS: &str = "composable_saga_pending_commands";

/// What kind of metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up (Prometheus: use `rate()`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution of values (durations, in seconds).
    Histogram,
}

impl MetricKind {
    /// `counter`, `gauge` or `histogram`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric of the [`CATALOG`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricInfo {
    /// Its name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Its labels, in the order the table of the book lists them.
    pub labels: &'static [&'static str],
    /// What it measures, one line.
    pub help: &'static str,
}

const fn info(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        kind,
        labels,
        help,
    }
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every metric the framework reports, by component.
#[rustfmt::skip]
pub const CATALOG: &[MetricInfo] = &[
    info(EVENT_STORE_APPEND_SECONDS, Histogram, &["backend", "outcome"], "Time one append took."),
    info(EVENT_STORE_EVENTS_APPENDED, Counter, &["backend"], "Events appended."),
    info(EVENT_STORE_CONFLICTS, Counter, &["backend"], "Appends refused: the stream was not at the expected version."),
    info(EVENT_STORE_READ_SECONDS, Histogram, &["backend", "operation"], "Time one read took."),
    info(STORE_ACTIONS, Counter, &["store"], "Actions reduced."),
    info(STORE_EFFECT_SECONDS, Histogram, &["store"], "How long each effect ran."),
    info(STORE_EFFECTS_IN_FLIGHT, Gauge, &["store"], "Effects running now."),
    info(BUS_PUBLISHED, Counter, &["backend", "topic"], "Messages published."),
    info(BUS_CONSUMED, Counter, &["backend", "topic", "group"], "Messages delivered to a consumer."),
    info(BUS_ACKED, Counter, &["backend", "topic", "group"], "Messages acknowledged."),
    info(BUS_REDELIVERED, Counter, &["backend", "topic", "group"], "Deliveries of a message delivered before."),
    info(BUS_DEAD_LETTERED, Counter, &["backend", "topic", "group"], "Messages moved to the dead-letter topic."),
    info(BUS_PENDING, Gauge, &["backend", "topic", "group"], "Messages delivered and not acknowledged."),
    info(BUS_CONSUMER_LAG, Gauge, &["backend", "group"], "Messages not yet delivered to the group."),
    info(PUBLISHER_EVENTS_BEHIND, Gauge, &["publisher"], "Events in the store not yet published."),
    info(SAGA_STARTED, Counter, &["saga"], "Saga instances started."),
    info(SAGA_COMPLETED, Counter, &["saga"], "Sagas that completed."),
    info(SAGA_COMPENSATED, Counter, &["saga"], "Sagas that ended compensated."),
    info(SAGA_TIMED_OUT, Counter, &["saga"], "Timeouts that made a saga take a step."),
    info(SAGA_PENDING_COMMANDS, Gauge, &["saga"], "Saga commands recorded and not delivered."),
    info(PROJECTION_EVENTS_APPLIED, Counter, &["projection"], "Events applied and committed."),
    info(PROJECTION_APPLY_ERRORS, Counter, &["projection"], "Failed attempts to apply an event."),
    info(PROJECTION_DEAD_LETTERS, Counter, &["projection"], "Events moved to the dead letters."),
    info(PROJECTION_BACKEND_ERRORS, Counter, &["projection", "class"], "Batches failed by the store or source."),
    info(PROJECTION_HEALTH, Gauge, &["projection"], "0 running, 1 retrying, 2 stopped."),
    info(PROJECTION_EVENTS_BEHIND, Gauge, &["projection"], "Events after the checkpoint."),
    info(PROJECTION_SECONDS_BEHIND, Gauge, &["projection"], "Age of the oldest event not applied."),
    info(PROJECTION_BATCH_SECONDS, Histogram, &["projection"], "Time to apply and commit one batch."),
    info(CACHE_HITS, Counter, &[], "Reads answered by the cache."),
    info(CACHE_MISSES, Counter, &[], "Reads the cache could not answer."),
    info(CACHE_ERRORS, Counter, &[], "Cache operations that failed."),
    info(REBUILD_EVENTS_APPLIED, Gauge, &["projection", "version"], "Events applied to the version being loaded."),
    info(REBUILD_EVENTS_EXPECTED, Gauge, &["projection", "version"], "Events the load expects to apply in all."),
    info(REBUILD_EVENTS_PER_SECOND, Gauge, &["projection", "version"], "Events applied per second since the load started."),
    info(REBUILD_SECONDS_LEFT, Gauge, &["projection", "version"], "Seconds left at the current rate."),
    info(CIRCUIT_STATE, Gauge, &["breaker"], "0 closed, 1 open, 2 half-open."),
    info(CIRCUIT_TRANSITIONS, Counter, &["breaker", "to"], "Circuit state changes."),
    info(CIRCUIT_REJECTED, Counter, &["breaker"], "Calls an open circuit refused."),
    info(BULKHEAD_REJECTED, Counter, &["bulkhead"], "Calls a full bulkhead refused."),
];

/// Registers the description (and unit) of every metric of the
/// [`CATALOG`] with the installed recorder, so an exporter can print them
/// (Prometheus's `# HELP` lines), and starts every counter without labels
/// at zero. Call it right after installing the recorder.
///
/// Why the zeros: a counter is exported only once something increments
/// it, and a query over a series that does not exist returns no data, not
/// zero. A ratio such as hits / (hits + misses) would show nothing while
/// every read hits, because the misses series was never born. Counters
/// with labels cannot be started this way (their label values are not
/// known here); they appear with their first increment.
pub fn describe() {
    for metric in CATALOG {
        if metric.kind == Counter && metric.labels.is_empty() {
            metrics::counter!(metric.name).increment(0);
        }
        let unit = metric
            .name
            .ends_with("_seconds")
            .then_some(metrics::Unit::Seconds);
        match (metric.kind, unit) {
            (Counter, _) => metrics::describe_counter!(metric.name, metric.help),
            (Gauge, _) => metrics::describe_gauge!(metric.name, metric.help),
            (Histogram, Some(unit)) => metrics::describe_histogram!(metric.name, unit, metric.help),
            (Histogram, None) => metrics::describe_histogram!(metric.name, metric.help),
        }
    }
}

// ---- recording helpers -----------------------------------------------------

/// Runs one event store `append` and records its duration, the events it
/// appended or the conflict it met. Every [`EventStore`](crate::EventStore)
/// backend wraps its `append` in this, with its `backend` label (and its
/// `append_to_streams`, whose outcome `T` is a `Vec<AppendOutcome>`: one
/// observation for the whole commit).
///
/// # Errors
///
/// The append's own error, unchanged.
pub async fn observe_append<F, T>(
    backend: &'static str,
    events: usize,
    append: F,
) -> Result<T, EventStoreError>
where
    F: Future<Output = Result<T, EventStoreError>>,
{
    let started = Instant::now();
    let result = append.await;
    let outcome = match &result {
        Ok(_) => {
            metrics::counter!(EVENT_STORE_EVENTS_APPENDED, "backend" => backend)
                .increment(events as u64);
            "ok"
        }
        Err(EventStoreError::WrongExpectedVersion { .. }) => {
            metrics::counter!(EVENT_STORE_CONFLICTS, "backend" => backend).increment(1);
            "conflict"
        }
        Err(_) => "error",
    };
    metrics::histogram!(EVENT_STORE_APPEND_SECONDS, "backend" => backend, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

/// Runs one event store read (`operation`: `load_stream`, `read_all` or
/// `replay`) and records its duration.
///
/// # Errors
///
/// The read's own error, unchanged.
pub async fn observe_read<T, F>(
    backend: &'static str,
    operation: &'static str,
    read: F,
) -> Result<T, EventStoreError>
where
    F: Future<Output = Result<T, EventStoreError>>,
{
    let started = Instant::now();
    let result = read.await;
    metrics::histogram!(EVENT_STORE_READ_SECONDS, "backend" => backend, "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    result
}

/// Records the event bus metrics of one backend; every
/// [`EventBus`](crate::EventBus) and [`Subscription`](crate::Subscription)
/// implementation calls it where the thing happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusMetrics {
    backend: &'static str,
}

impl BusMetrics {
    /// The metrics of the bus labelled `backend`.
    pub const fn new(backend: &'static str) -> Self {
        Self { backend }
    }

    /// `count` messages were published to `topic`.
    pub fn published(&self, topic: &str, count: usize) {
        metrics::counter!(BUS_PUBLISHED, "backend" => self.backend, "topic" => topic.to_owned())
            .increment(count as u64);
    }

    /// `messages` were delivered to a consumer of `group`: counts them as
    /// consumed, and those delivered before as redelivered.
    pub fn delivered(&self, group: &str, messages: &[BusMessage]) {
        for message in messages {
            let labels = [
                ("backend", self.backend.to_owned()),
                ("topic", message.topic.as_str().to_owned()),
                ("group", group.to_owned()),
            ];
            metrics::counter!(BUS_CONSUMED, &labels).increment(1);
            if message.deliveries > 1 {
                metrics::counter!(BUS_REDELIVERED, &labels).increment(1);
            }
        }
    }

    /// `messages` were acknowledged by a consumer of `group`.
    pub fn acked(&self, group: &str, messages: &[BusMessage]) {
        for message in messages {
            metrics::counter!(
                BUS_ACKED,
                "backend" => self.backend,
                "topic" => message.topic.as_str().to_owned(),
                "group" => group.to_owned()
            )
            .increment(1);
        }
    }

    /// `count` messages of `topic` were moved to its dead-letter topic by
    /// a consumer of `group`.
    pub fn dead_lettered(&self, topic: &str, group: &str, count: usize) {
        metrics::counter!(
            BUS_DEAD_LETTERED,
            "backend" => self.backend,
            "topic" => topic.to_owned(),
            "group" => group.to_owned()
        )
        .increment(count as u64);
    }

    /// `group` has `count` messages of `topic` pending.
    pub fn pending(&self, topic: &str, group: &str, count: usize) {
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(
            BUS_PENDING,
            "backend" => self.backend,
            "topic" => topic.to_owned(),
            "group" => group.to_owned()
        )
        .set(count as f64);
    }

    /// `group` has `count` messages not delivered yet.
    pub fn lag(&self, group: &str, count: u64) {
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(BUS_CONSUMER_LAG, "backend" => self.backend, "group" => group.to_owned())
            .set(count as f64);
    }
}

/// The handles a [`Store`](crate::Store) records through, registered once
/// when it is built (the action path stays free of lookups).
#[derive(Clone)]
pub(crate) struct StoreMetrics {
    actions: metrics::Counter,
    effect_seconds: metrics::Histogram,
    in_flight: metrics::Gauge,
}

impl StoreMetrics {
    /// The handles of the store whose reducer is `R`.
    pub(crate) fn for_reducer<R>() -> Self {
        let store = short_type_name(std::any::type_name::<R>());
        Self {
            actions: metrics::counter!(STORE_ACTIONS, "store" => store),
            effect_seconds: metrics::histogram!(STORE_EFFECT_SECONDS, "store" => store),
            in_flight: metrics::gauge!(STORE_EFFECTS_IN_FLIGHT, "store" => store),
        }
    }

    pub(crate) fn action(&self) {
        self.actions.increment(1);
    }

    /// Counts an effect as running until the returned guard is dropped
    /// (finished, cancelled or aborted), then records how long it ran.
    pub(crate) fn effect_started(&self) -> EffectTimer {
        self.in_flight.increment(1.0);
        EffectTimer {
            metrics: self.clone(),
            started: Instant::now(),
        }
    }
}

impl std::fmt::Debug for StoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreMetrics").finish_non_exhaustive()
    }
}

/// See [`StoreMetrics::effect_started`].
pub(crate) struct EffectTimer {
    metrics: StoreMetrics,
    started: Instant,
}

impl Drop for EffectTimer {
    fn drop(&mut self) {
        self.metrics.in_flight.decrement(1.0);
        self.metrics
            .effect_seconds
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// `a::b::Counter<c::D>` -> `Counter`: a readable, bounded label.
fn short_type_name(full: &'static str) -> &'static str {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

pub(crate) fn publisher_behind(publisher: &str, events: u64) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(PUBLISHER_EVENTS_BEHIND, "publisher" => publisher.to_owned())
        .set(events as f64);
}

/// What a saga runtime records, by saga kind.
pub(crate) mod saga {
    use super::{
        SAGA_COMPENSATED, SAGA_COMPLETED, SAGA_PENDING_COMMANDS, SAGA_STARTED, SAGA_TIMED_OUT,
    };
    use crate::saga::SagaOutcome;

    pub(crate) fn started(saga: &'static str) {
        metrics::counter!(SAGA_STARTED, "saga" => saga).increment(1);
    }

    pub(crate) fn ended(saga: &'static str, outcome: SagaOutcome) {
        let name = match outcome {
            SagaOutcome::Completed => SAGA_COMPLETED,
            SagaOutcome::Compensated => SAGA_COMPENSATED,
        };
        metrics::counter!(name, "saga" => saga).increment(1);
    }

    pub(crate) fn timed_out(saga: &'static str) {
        metrics::counter!(SAGA_TIMED_OUT, "saga" => saga).increment(1);
    }

    /// `delta` more (or fewer) commands wait to be delivered.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn pending_commands(saga: &'static str, delta: isize) {
        let gauge = metrics::gauge!(SAGA_PENDING_COMMANDS, "saga" => saga);
        if delta >= 0 {
            gauge.increment(delta as f64);
        } else {
            gauge.decrement(delta.unsigned_abs() as f64);
        }
    }
}
