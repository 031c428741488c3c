//! The metrics the resilience primitives report, through the `metrics`
//! crate facade (install any recorder, e.g. a Prometheus exporter, to
//! collect them).

use super::CircuitState;

/// Gauge: a circuit breaker's state, labelled by `breaker`: 0 closed, 1
/// open, 2 half-open.
pub const CIRCUIT_STATE: &str = "composable_circuit_state";
/// Counter: a circuit breaker's state changes, labelled by `breaker` and
/// `to` (`closed`, `open`, `half_open`).
pub const CIRCUIT_TRANSITIONS: &str = "composable_circuit_transitions_total";
/// Counter: calls a circuit breaker refused, labelled by `breaker`.
pub const CIRCUIT_REJECTED: &str = "composable_circuit_rejected_total";
/// Counter: calls a bulkhead refused because it was full, labelled by
/// `bulkhead`.
pub const BULKHEAD_REJECTED: &str = "composable_bulkhead_rejected_total";

/// Every metric name, for documentation and dashboards.
pub const ALL: &[&str] = &[
    CIRCUIT_STATE,
    CIRCUIT_TRANSITIONS,
    CIRCUIT_REJECTED,
    BULKHEAD_REJECTED,
];

/// Sets the state gauge and counts the change.
pub(super) fn record_transition(breaker: &str, to: CircuitState) {
    metrics::gauge!(CIRCUIT_STATE, "breaker" => breaker.to_owned()).set(to.gauge());
    metrics::counter!(CIRCUIT_TRANSITIONS, "breaker" => breaker.to_owned(), "to" => to.as_str())
        .increment(1);
}

pub(super) fn record_initial_state(breaker: &str) {
    metrics::gauge!(CIRCUIT_STATE, "breaker" => breaker.to_owned())
        .set(CircuitState::Closed.gauge());
}

pub(super) fn record_rejection(breaker: &str) {
    metrics::counter!(CIRCUIT_REJECTED, "breaker" => breaker.to_owned()).increment(1);
}

pub(super) fn record_bulkhead_rejection(bulkhead: &str) {
    metrics::counter!(BULKHEAD_REJECTED, "bulkhead" => bulkhead.to_owned()).increment(1);
}
