//! [`ResilienceError`]: the calls the resilience primitives refused or cut
//! short. Every variant is transient: the same call may succeed later.

use std::time::Duration;

use crate::error::{coded_error, codes};

/// A call a [`CircuitBreaker`](super::CircuitBreaker), a
/// [`timeout`](super::timeout) or a [`Bulkhead`](super::Bulkhead) refused
/// or cut short. A refused call was never made; a timed-out call was
/// cancelled on this side, but a remote service may have finished it, so
/// retry only calls that are idempotent (an idempotency key, a command id).
///
/// Wrap it in your own error enum with `#[code(transparent)]`, so that `?`
/// works and the code and class stay this error's:
///
/// ```
/// use composable_rust_core::error::{CodedError, ErrorClass, coded_error, codes};
/// use composable_rust_core::resilience::ResilienceError;
///
/// #[coded_error]
/// #[derive(Debug, thiserror::Error)]
/// enum GatewayError {
///     #[code(transparent)]
///     #[error(transparent)]
///     Resilience(#[from] ResilienceError),
/// }
///
/// let error = GatewayError::from(ResilienceError::BulkheadFull {
///     bulkhead: "payments".into(),
///     max_concurrent: 4,
///     max_queued: 0,
/// });
/// assert_eq!(error.code(), codes::BULKHEAD_FULL);
/// assert_eq!(error.class(), ErrorClass::Transient);
/// ```
#[coded_error]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResilienceError {
    /// The breaker is open (or half-open with its one trial call in
    /// flight): the call was not made.
    #[code(codes::CIRCUIT_OPEN, transient)]
    #[error(
        "the circuit breaker `{breaker}` is open because its dependency failed \
         {failures} time(s) in a row, so the call was not made; it lets one trial call \
         through in {retry_in:?}: retry after that, and check that the dependency is up"
    )]
    CircuitOpen {
        /// The breaker's name (the dependency it guards).
        breaker: String,
        /// The failures in a row that opened it.
        failures: u32,
        /// How long until it lets a trial call through (zero when the trial
        /// is already in flight).
        retry_in: Duration,
    },
    /// The operation did not finish within its limit and was cancelled.
    #[code(codes::TIMED_OUT, transient)]
    #[error(
        "the operation did not finish within {after:?} and was cancelled here; a remote \
         service may still have carried it out, so retry only if it is idempotent, and raise \
         the limit if the service is slow but healthy"
    )]
    TimedOut {
        /// The limit that passed.
        after: Duration,
    },
    /// Every slot of the bulkhead was busy and its queue full.
    #[code(codes::BULKHEAD_FULL, transient)]
    #[error(
        "the bulkhead `{bulkhead}` is full ({max_concurrent} call(s) running, {max_queued} \
         waiting), so the call was not made; retry later, or give the bulkhead more slots \
         or a longer queue if the dependency can take them"
    )]
    BulkheadFull {
        /// The bulkhead's name.
        bulkhead: String,
        /// Calls it runs at once.
        max_concurrent: usize,
        /// Calls it lets wait for a slot.
        max_queued: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CodedError;

    #[test]
    fn every_variant_is_coded_and_transient() {
        let errors = [
            ResilienceError::CircuitOpen {
                breaker: "redis".into(),
                failures: 5,
                retry_in: Duration::from_secs(3),
            },
            ResilienceError::TimedOut {
                after: Duration::from_secs(2),
            },
            ResilienceError::BulkheadFull {
                bulkhead: "payments".into(),
                max_concurrent: 4,
                max_queued: 8,
            },
        ];
        for error in errors {
            let prefix = format!("[{}] ", error.code());
            assert!(error.to_string().starts_with(&prefix), "{error}");
            assert!(error.is_transient(), "{error}");
        }
    }
}
