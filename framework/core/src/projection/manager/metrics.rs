//! The metrics a projection manager reports, through the `metrics` crate
//! facade (install any recorder, e.g. a Prometheus exporter, to collect
//! them), and the same figures as plain values for code and tests.

use std::time::Duration;

/// Counter: events applied (or skipped as not handled) and committed.
pub const EVENTS_APPLIED: &str = "composable_projection_events_applied_total";
/// Counter: failed attempts to apply an event.
pub const APPLY_ERRORS: &str = "composable_projection_apply_errors_total";
/// Counter: events moved to the dead letters.
pub const DEAD_LETTERS: &str = "composable_projection_dead_letters_total";
/// Counter: batches that failed for a reason other than one event (store or
/// source unavailable, or misconfigured), labelled by `class`
/// (`transient`, `permanent`, `configuration`).
pub const BACKEND_ERRORS: &str = "composable_projection_backend_errors_total";
/// Gauge: the manager's [`ProjectionHealth`](super::ProjectionHealth): 0
/// running, 1 retrying a transient failure, 2 stopped.
pub const HEALTH: &str = "composable_projection_health";
/// Gauge: events in the source after the checkpoint.
pub const EVENTS_BEHIND: &str = "composable_projection_events_behind";
/// Gauge: age of the oldest event not yet applied, in seconds.
pub const SECONDS_BEHIND: &str = "composable_projection_seconds_behind";
/// Histogram: time to apply and commit one batch, in seconds.
pub const BATCH_SECONDS: &str = "composable_projection_batch_duration_seconds";

/// Every metric name, for documentation and dashboards.
pub const ALL: &[&str] = &[
    EVENTS_APPLIED,
    APPLY_ERRORS,
    DEAD_LETTERS,
    BACKEND_ERRORS,
    HEALTH,
    EVENTS_BEHIND,
    SECONDS_BEHIND,
    BATCH_SECONDS,
];

/// How far a projection is behind its source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    /// Events in the source after the checkpoint.
    pub events_behind: u64,
    /// How long ago the oldest unapplied event was recorded (zero when
    /// caught up).
    pub seconds_behind: Duration,
}

/// Running totals of one manager since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectionStats {
    /// Events committed (applied or skipped as not handled).
    pub events_applied: u64,
    /// Failed attempts to apply an event.
    pub apply_errors: u64,
    /// Events moved to the dead letters.
    pub dead_letters: u64,
    /// Batches processed.
    pub batches: u64,
}

pub(super) fn record_batch(projection: &str, events: u64, elapsed: Duration) {
    let labels = [("projection", projection.to_owned())];
    metrics::counter!(EVENTS_APPLIED, &labels).increment(events);
    metrics::histogram!(BATCH_SECONDS, &labels).record(elapsed.as_secs_f64());
}

pub(super) fn record_apply_error(projection: &str) {
    metrics::counter!(APPLY_ERRORS, "projection" => projection.to_owned()).increment(1);
}

pub(super) fn record_dead_letter(projection: &str) {
    metrics::counter!(DEAD_LETTERS, "projection" => projection.to_owned()).increment(1);
}

pub(super) fn record_backend_error(projection: &str, class: crate::error::ErrorClass) {
    metrics::counter!(BACKEND_ERRORS, "projection" => projection.to_owned(), "class" => class.as_str())
        .increment(1);
}

pub(super) fn record_health(projection: &str, health: f64) {
    metrics::gauge!(HEALTH, "projection" => projection.to_owned()).set(health);
}

pub(super) fn record_lag(projection: &str, lag: Lag) {
    let labels = [("projection", projection.to_owned())];
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(EVENTS_BEHIND, &labels).set(lag.events_behind as f64);
    metrics::gauge!(SECONDS_BEHIND, &labels).set(lag.seconds_behind.as_secs_f64());
}
