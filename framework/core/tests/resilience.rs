//! The resilience primitives on a `TestClock`: no test sleeps. Retry
//! schedules and budgets, the circuit breaker's states and metrics, the
//! bulkhead's bound, timeouts, and their use by the cached projection
//! store and the saga dispatchers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::error::{BackendError, CodedError, ErrorClass, ErrorCode, codes};
use composable_rust_core::projection::{CacheMode, CachedProjectionStore, ProjectionCache};
use composable_rust_core::resilience::{
    Backoff, Bulkhead, CircuitBreaker, CircuitState, ResilienceError, RetryPolicy, timeout,
};
use composable_rust_core::saga::{
    CommandDispatcher, CommandId, DispatchError, RetryingDispatcher, SagaCommand, SagaId,
};
use composable_rust_core::{
    Clock, InMemoryProjectionStore, ProjectionError, ProjectionStore, TestClock,
};
use proptest::prelude::*;

const FLAKY: ErrorCode = ErrorCode::new("CR-E9990", "test dependency");

fn transient() -> BackendError {
    BackendError::from_message(FLAKY, ErrorClass::Transient, "connection refused")
}

fn permanent() -> BackendError {
    BackendError::from_message(FLAKY, ErrorClass::Permanent, "declined")
}

fn shared(clock: &TestClock) -> Arc<dyn Clock> {
    Arc::new(clock.clone())
}

/// Lets spawned tasks run until one of them sleeps on `clock`, then moves
/// the clock by `by`.
async fn advance_once_sleeping(clock: &TestClock, by: Duration) {
    for _ in 0..10_000 {
        if clock.pending_sleepers() > 0 {
            clock.advance(by);
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("nothing slept on the clock");
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

mod backoff {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let backoff = Backoff::new(ms(100), ms(1000));
        let waits: Vec<_> = (1..=6).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let backoff = Backoff::new(ms(100), ms(1000)).with_jitter(1.0);
        assert_eq!(backoff.delay_with(3, 0.0), ms(400));
        assert_eq!(backoff.delay_with(3, 1.0), Duration::ZERO);
        assert_eq!(backoff.delay_with(3, 0.25), ms(300));
    }

    proptest! {
        #[test]
        fn every_wait_lies_between_the_jittered_floor_and_the_ceiling(
            initial_ms in 0u64..10_000,
            max_ms in 0u64..100_000,
            jitter in 0.0f64..=1.0,
            attempt in 1u32..100,
            random in 0.0f64..=1.0,
        ) {
            let backoff = Backoff::new(ms(initial_ms), ms(max_ms)).with_jitter(jitter);
            let ceiling = backoff.ceiling(attempt);
            prop_assert!(ceiling <= backoff.max());
            prop_assert!(ceiling >= backoff.initial().min(backoff.max()));
            prop_assert!(backoff.ceiling(attempt + 1) >= ceiling, "never shrinks");
            let wait = backoff.delay_with(attempt, random);
            prop_assert!(wait <= ceiling);
            // One nanosecond of rounding in `mul_f64`.
            prop_assert!(wait + Duration::from_nanos(1) >= ceiling.mul_f64(1.0 - jitter));
            let drawn = backoff.delay(attempt);
            prop_assert!(drawn <= ceiling);
            prop_assert!(drawn + Duration::from_nanos(1) >= ceiling.mul_f64(1.0 - jitter));
        }
    }
}

mod retry {
    use super::*;

    /// An operation that fails with `error` the first `failures` times and
    /// records when (on the clock) each attempt began.
    struct Flaky {
        clock: TestClock,
        failures: u32,
        error: fn() -> BackendError,
        attempts: Mutex<Vec<Duration>>,
    }

    impl Flaky {
        fn new(clock: &TestClock, failures: u32, error: fn() -> BackendError) -> Arc<Self> {
            Arc::new(Self {
                clock: clock.clone(),
                failures,
                error,
                attempts: Mutex::new(Vec::new()),
            })
        }

        async fn call(&self, start: chrono::DateTime<chrono::Utc>) -> Result<u32, BackendError> {
            let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
            attempts.push((self.clock.now() - start).to_std().unwrap());
            let n = attempts.len() as u32;
            if n <= self.failures {
                Err((self.error)())
            } else {
                Ok(n)
            }
        }

        fn attempts(&self) -> Vec<Duration> {
            self.attempts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }
    }

    /// Runs `policy` over `flaky` on a task, advancing the clock by each
    /// `waits` as the retry sleeps.
    async fn run(
        policy: RetryPolicy,
        clock: &TestClock,
        flaky: &Arc<Flaky>,
        waits: &[u64],
    ) -> Result<u32, BackendError> {
        let task = tokio::spawn({
            let clock = shared(clock);
            let flaky = Arc::clone(flaky);
            let start = clock.now();
            async move { policy.retry(&clock, || flaky.call(start)).await }
        });
        for wait in waits {
            advance_once_sleeping(clock, ms(*wait)).await;
        }
        task.await.unwrap()
    }

    #[tokio::test]
    async fn transient_failures_are_retried_on_the_backoff_schedule() {
        let clock = TestClock::new();
        let flaky = Flaky::new(&clock, 3, transient);
        let policy = RetryPolicy::new(Backoff::new(ms(100), ms(1000))).with_max_attempts(5);

        let result = run(policy, &clock, &flaky, &[100, 200, 400]).await;

        assert_eq!(result.unwrap(), 4, "succeeds on the fourth attempt");
        assert_eq!(flaky.attempts(), [ms(0), ms(100), ms(300), ms(700)]);
        assert_eq!(clock.pending_sleepers(), 0);
    }

    #[tokio::test]
    async fn it_gives_up_after_max_attempts_with_the_last_error() {
        let clock = TestClock::new();
        let flaky = Flaky::new(&clock, u32::MAX, transient);
        let policy = RetryPolicy::new(Backoff::new(ms(100), ms(1000))).with_max_attempts(3);

        let error = run(policy, &clock, &flaky, &[100, 200]).await.unwrap_err();

        assert_eq!(flaky.attempts().len(), 3);
        assert!(error.is_transient());
        assert_eq!(error.code(), FLAKY);
    }

    #[tokio::test]
    async fn it_stops_when_the_next_wait_would_pass_max_elapsed() {
        let clock = TestClock::new();
        let flaky = Flaky::new(&clock, u32::MAX, transient);
        // Attempts at 0, 100, 300 ms; the next would start at 700 > 500.
        let policy = RetryPolicy::new(Backoff::new(ms(100), ms(1000)))
            .with_max_attempts(100)
            .with_max_elapsed(ms(500));

        let error = run(policy, &clock, &flaky, &[100, 200]).await.unwrap_err();

        assert_eq!(flaky.attempts(), [ms(0), ms(100), ms(300)]);
        assert!(error.is_transient());
    }

    #[tokio::test]
    async fn permanent_errors_are_returned_at_once() {
        let clock = TestClock::new();
        let flaky = Flaky::new(&clock, 1, permanent);
        let policy = RetryPolicy::new(Backoff::new(ms(100), ms(1000)));

        let error = run(policy, &clock, &flaky, &[]).await.unwrap_err();

        assert_eq!(error.class(), ErrorClass::Permanent);
        assert_eq!(flaky.attempts().len(), 1, "never retried");
        assert_eq!(clock.pending_sleepers(), 0, "never waited");
    }

    #[test]
    fn next_delay_is_none_once_the_budget_is_spent() {
        let policy = RetryPolicy::new(Backoff::new(ms(100), ms(1000)))
            .with_max_attempts(3)
            .with_max_elapsed(ms(1000));
        assert_eq!(policy.next_delay(1, Duration::ZERO), Some(ms(100)));
        assert_eq!(policy.next_delay(2, ms(100)), Some(ms(200)));
        assert_eq!(policy.next_delay(3, ms(300)), None, "three attempts made");
        assert_eq!(policy.next_delay(2, ms(900)), None, "900 + 200 > 1000");
    }
}

/// A metrics recorder that keeps the last gauge value and the counter
/// totals, by name and labels, for the calls made inside
/// `metrics::with_local_recorder`.
mod recorder {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};

    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder,
        SharedString, Unit,
    };

    #[derive(Default)]
    pub(super) struct Captured {
        values: Mutex<HashMap<String, Arc<Value>>>,
    }

    #[derive(Default)]
    struct Value(AtomicU64);

    impl CounterFn for Value {
        fn increment(&self, value: u64) {
            self.0.fetch_add(value, Ordering::SeqCst);
        }
        fn absolute(&self, value: u64) {
            self.0.store(value, Ordering::SeqCst);
        }
    }

    impl GaugeFn for Value {
        fn increment(&self, _: f64) {}
        fn decrement(&self, _: f64) {}
        fn set(&self, value: f64) {
            self.0.store(value.to_bits(), Ordering::SeqCst);
        }
    }

    fn id(key: &Key) -> String {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    impl Captured {
        fn value(&self, key: &Key) -> Arc<Value> {
            let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(values.entry(id(key)).or_default())
        }

        pub(super) fn counter(&self, id: &str) -> u64 {
            let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
            values.get(id).map_or(0, |v| v.0.load(Ordering::SeqCst))
        }

        pub(super) fn gauge(&self, id: &str) -> Option<f64> {
            let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
            values
                .get(id)
                .map(|v| f64::from_bits(v.0.load(Ordering::SeqCst)))
        }
    }

    impl Recorder for Captured {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.value(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.value(key))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }
}

mod breaker {
    use super::*;

    fn breaker(clock: &TestClock) -> CircuitBreaker {
        CircuitBreaker::builder("gateway")
            .with_failure_threshold(3)
            .with_cool_down(Duration::from_secs(30))
            .with_clock(shared(clock))
            .build()
    }

    fn fail(breaker: &CircuitBreaker) {
        breaker
            .acquire()
            .unwrap()
            .record(&Err::<(), _>(transient()));
    }

    #[test]
    fn it_opens_after_the_threshold_refuses_then_closes_after_a_good_trial() {
        let clock = TestClock::new();
        let captured = recorder::Captured::default();
        ::metrics::with_local_recorder(&captured, || {
            let breaker = breaker(&clock);
            assert_eq!(breaker.name(), "gateway");
            assert_eq!(breaker.state(), CircuitState::Closed);
            assert_eq!(
                captured.gauge("composable_circuit_state{breaker=gateway}"),
                Some(0.0)
            );

            fail(&breaker);
            fail(&breaker);
            assert_eq!(breaker.state(), CircuitState::Closed, "2 of 3");
            fail(&breaker);
            assert_eq!(breaker.state(), CircuitState::Open);
            assert_eq!(
                captured.gauge("composable_circuit_state{breaker=gateway}"),
                Some(1.0)
            );

            clock.advance(Duration::from_secs(10));
            let Err(refused) = breaker.acquire() else {
                panic!("an open breaker refuses");
            };
            assert_eq!(
                refused,
                ResilienceError::CircuitOpen {
                    breaker: "gateway".into(),
                    failures: 3,
                    retry_in: Duration::from_secs(20),
                }
            );
            assert_eq!(refused.code(), codes::CIRCUIT_OPEN);
            assert!(refused.is_transient());

            clock.advance(Duration::from_secs(20));
            let trial = breaker.acquire().expect("the cool-down has passed");
            assert!(trial.is_trial());
            assert_eq!(breaker.state(), CircuitState::HalfOpen);
            assert_eq!(
                captured.gauge("composable_circuit_state{breaker=gateway}"),
                Some(2.0)
            );
            assert!(
                matches!(breaker.acquire(), Err(ResilienceError::CircuitOpen { retry_in, .. }) if retry_in.is_zero()),
                "one trial at a time"
            );

            trial.record(&Ok::<(), BackendError>(()));
            assert_eq!(breaker.state(), CircuitState::Closed);
            assert_eq!(breaker.failures(), 0);
            assert_eq!(
                captured.gauge("composable_circuit_state{breaker=gateway}"),
                Some(0.0)
            );

            assert_eq!(
                captured.counter("composable_circuit_transitions_total{breaker=gateway,to=open}"),
                1
            );
            assert_eq!(
                captured
                    .counter("composable_circuit_transitions_total{breaker=gateway,to=half_open}"),
                1
            );
            assert_eq!(
                captured.counter("composable_circuit_transitions_total{breaker=gateway,to=closed}"),
                1
            );
            assert_eq!(
                captured.counter("composable_circuit_rejected_total{breaker=gateway}"),
                2
            );
        });
        assert_eq!(composable_rust_core::resilience::metrics::ALL.len(), 4);
    }

    #[test]
    fn a_failed_trial_reopens_for_another_cool_down() {
        let clock = TestClock::new();
        let breaker = breaker(&clock);
        for _ in 0..3 {
            fail(&breaker);
        }
        clock.advance(Duration::from_secs(30));
        fail(&breaker); // the trial
        assert_eq!(breaker.state(), CircuitState::Open);
        clock.advance(Duration::from_secs(29));
        assert!(breaker.acquire().is_err(), "the cool-down starts again");
        clock.advance(Duration::from_secs(1));
        assert!(breaker.acquire().unwrap().is_trial());
    }

    #[test]
    fn permanent_errors_and_successes_reset_the_count() {
        let clock = TestClock::new();
        let breaker = breaker(&clock);
        for _ in 0..10 {
            fail(&breaker);
            fail(&breaker);
            breaker
                .acquire()
                .unwrap()
                .record(&Err::<(), _>(permanent()));
        }
        assert_eq!(
            breaker.state(),
            CircuitState::Closed,
            "never 3 transient in a row"
        );
        fail(&breaker);
        breaker.acquire().unwrap().succeeded();
        assert_eq!(breaker.failures(), 0);
    }

    #[test]
    fn a_cancelled_trial_lets_the_next_call_be_the_trial() {
        let clock = TestClock::new();
        let breaker = breaker(&clock);
        for _ in 0..3 {
            fail(&breaker);
        }
        clock.advance(Duration::from_secs(30));
        drop(breaker.acquire().unwrap());
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        let next = breaker.acquire().expect("the trial slot is free again");
        assert!(next.is_trial());
    }

    #[tokio::test]
    async fn call_does_not_make_a_refused_call() {
        #[composable_rust_core::error::coded_error]
        #[derive(Debug, thiserror::Error)]
        enum GatewayError {
            #[code(FLAKY, transient)]
            #[error("down")]
            Down,
            #[code(transparent)]
            #[error(transparent)]
            Resilience(#[from] ResilienceError),
        }
        let clock = TestClock::new();
        let breaker = breaker(&clock);
        let calls = AtomicU32::new(0);
        let call = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(GatewayError::Down)
        };
        for _ in 0..5 {
            let _ = breaker.call(call).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3, "refused after the third");
        let error = breaker.call(call).await.unwrap_err();
        assert!(matches!(
            error,
            GatewayError::Resilience(ResilienceError::CircuitOpen { .. })
        ));
        assert_eq!(error.code(), codes::CIRCUIT_OPEN);
    }
}

/// The breaker against a model of its rules, for any sequence of call
/// outcomes and clock moves.
mod breaker_model {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Step {
        Transient,
        Permanent,
        Success,
        Wait(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => Just(Step::Transient),
            1 => Just(Step::Permanent),
            1 => Just(Step::Success),
            1 => (0u64..40).prop_map(Step::Wait),
        ]
    }

    proptest! {
        #[test]
        fn the_breaker_follows_its_rules(
            threshold in 1u32..5,
            cool_down in 1u64..30,
            steps in proptest::collection::vec(step(), 0..60),
        ) {
            let clock = TestClock::new();
            let breaker = CircuitBreaker::builder("model")
                .with_failure_threshold(threshold)
                .with_cool_down(Duration::from_secs(cool_down))
                .with_clock(shared(&clock))
                .build();
            // The model: failures in a row while closed, and since when open.
            let mut failures = 0;
            let mut opened_at: Option<u64> = None;
            let mut now = 0;
            for step in steps {
                let outcome = match step {
                    Step::Wait(secs) => {
                        clock.advance(Duration::from_secs(secs));
                        now += secs;
                        continue;
                    }
                    Step::Transient => Err(transient()),
                    Step::Permanent => Err(permanent()),
                    Step::Success => Ok(()),
                };
                let refused = opened_at.is_some_and(|at| now - at < cool_down);
                let permit = breaker.acquire();
                prop_assert_eq!(permit.is_err(), refused, "refused while open only");
                let Ok(permit) = permit else { continue };
                prop_assert_eq!(permit.is_trial(), opened_at.is_some());
                let failed = matches!(step, Step::Transient);
                permit.record(&outcome);
                match (opened_at, failed) {
                    (Some(_), true) => opened_at = Some(now),
                    (Some(_), false) => {
                        opened_at = None;
                        failures = 0;
                    }
                    (None, true) => {
                        failures += 1;
                        if failures >= threshold {
                            opened_at = Some(now);
                        }
                    }
                    (None, false) => failures = 0,
                }
                let expected = if opened_at.is_some() { CircuitState::Open } else { CircuitState::Closed };
                prop_assert_eq!(breaker.state(), expected);
            }
        }
    }
}

mod bulkhead {
    use super::*;

    #[tokio::test]
    async fn concurrent_callers_never_exceed_the_bound_and_the_queue_overflow_is_refused() {
        let bulkhead = Bulkhead::builder("payments", 3).with_max_queued(4).build();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));

        let callers: Vec<_> = (0..10)
            .map(|_| {
                let bulkhead = bulkhead.clone();
                let (running, peak, gate) = (running.clone(), peak.clone(), gate.clone());
                tokio::spawn(async move {
                    bulkhead
                        .run(async move {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            gate.acquire().await.unwrap().forget();
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        // All ten have tried: three run, four wait, three were refused.
        for _ in 0..10_000 {
            if bulkhead.in_flight() == 3 && bulkhead.queued() == 4 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!((bulkhead.in_flight(), bulkhead.queued()), (3, 4));

        gate.add_permits(10);
        let mut refused = 0;
        for caller in callers {
            match caller.await.unwrap() {
                Ok(()) => {}
                Err(error) => {
                    assert_eq!(
                        error,
                        ResilienceError::BulkheadFull {
                            bulkhead: "payments".into(),
                            max_concurrent: 3,
                            max_queued: 4
                        }
                    );
                    assert_eq!(error.code(), codes::BULKHEAD_FULL);
                    refused += 1;
                }
            }
        }
        assert_eq!(refused, 3);
        assert_eq!(peak.load(Ordering::SeqCst), 3, "never more than 3 at once");
        assert_eq!((bulkhead.in_flight(), bulkhead.queued()), (0, 0));
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_waiting_leaves_the_queue() {
        let clock = TestClock::new();
        let bulkhead = Bulkhead::builder("payments", 1).with_max_queued(1).build();
        let busy = bulkhead.acquire().await.unwrap();
        let waiter = tokio::spawn({
            let (bulkhead, clock) = (bulkhead.clone(), shared(&clock));
            async move {
                timeout(&clock, ms(500), bulkhead.acquire())
                    .await
                    .map(|_| ())
            }
        });
        advance_once_sleeping(&clock, ms(500)).await;
        assert!(matches!(
            waiter.await.unwrap(),
            Err(ResilienceError::TimedOut { .. })
        ));
        assert_eq!(bulkhead.queued(), 0);
        drop(busy);
        assert_eq!(bulkhead.in_flight(), 0);
    }
}

mod timeouts {
    use super::*;

    #[tokio::test]
    async fn a_slow_future_is_cancelled_when_the_test_clock_passes_the_limit() {
        let clock = TestClock::new();
        let dropped = Arc::new(AtomicBool::new(false));
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let task = tokio::spawn({
            let (clock, flag) = (shared(&clock), Flag(dropped.clone()));
            async move {
                timeout(&clock, Duration::from_secs(5), async move {
                    let _flag = flag;
                    std::future::pending::<()>().await;
                })
                .await
            }
        });
        advance_once_sleeping(&clock, Duration::from_secs(4)).await;
        tokio::task::yield_now().await;
        assert!(!task.is_finished(), "4 s of 5");
        clock.advance(Duration::from_secs(1));
        let error = task.await.unwrap().unwrap_err();
        assert_eq!(
            error,
            ResilienceError::TimedOut {
                after: Duration::from_secs(5)
            }
        );
        assert_eq!(error.code(), codes::TIMED_OUT);
        assert!(
            dropped.load(Ordering::SeqCst),
            "the slow future was cancelled"
        );
    }

    #[tokio::test]
    async fn a_future_that_finishes_in_time_gives_its_output() {
        let clock = shared(&TestClock::new());
        assert_eq!(timeout(&clock, ms(1), async { 7 }).await, Ok(7));
    }
}

mod cached_store {
    use super::*;

    /// An in-memory cache that can be switched off, counting the calls it
    /// receives.
    #[derive(Default)]
    struct DeadCache {
        data: InMemoryProjectionStore,
        down: AtomicBool,
        calls: AtomicU32,
    }

    impl DeadCache {
        fn check(&self) -> Result<(), ProjectionError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(ProjectionError::Backend(transient()));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl ProjectionCache for DeadCache {
        async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
            self.check()?;
            self.data.cache_get(key).await
        }
        async fn cache_set(
            &self,
            key: &str,
            data: &[u8],
            ttl: Option<Duration>,
        ) -> Result<(), ProjectionError> {
            self.check()?;
            self.data.cache_set(key, data, ttl).await
        }
        async fn cache_delete(&self, key: &str) -> Result<(), ProjectionError> {
            self.check()?;
            self.data.cache_delete(key).await
        }
        async fn cache_delete_prefix(&self, prefix: &str) -> Result<u64, ProjectionError> {
            self.check()?;
            self.data.cache_delete_prefix(prefix).await
        }
    }

    #[tokio::test]
    async fn a_down_cache_is_not_called_while_its_breaker_is_open_and_never_serves_stale_data() {
        let clock = TestClock::new();
        let breaker = CircuitBreaker::builder("redis-cache")
            .with_failure_threshold(2)
            .with_cool_down(Duration::from_secs(10))
            .with_clock(shared(&clock))
            .build();
        let store = CachedProjectionStore::new(
            InMemoryProjectionStore::new(),
            DeadCache::default(),
            CacheMode::WriteThrough,
        )
        .with_circuit_breaker(breaker);
        store.save("k", b"old").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), Some(b"old".to_vec()));
        assert_eq!(store.stats().hits, 1);

        // The cache dies; a write commits to the primary.
        store.cache().down.store(true, Ordering::SeqCst);
        store.save("k", b"new").await.unwrap();
        assert_eq!(store.circuit_breaker().state(), CircuitState::Open);
        let calls = store.cache().calls.load(Ordering::SeqCst);
        let errors = store.stats().errors;
        for _ in 0..20 {
            assert_eq!(store.get("k").await.unwrap(), Some(b"new".to_vec()));
        }
        store.save("other", b"x").await.unwrap();
        assert_eq!(
            store.cache().calls.load(Ordering::SeqCst),
            calls,
            "no call reaches the cache while the breaker is open"
        );
        assert_eq!(
            store.stats().errors,
            errors,
            "refusals are not cache failures"
        );

        // The cache comes back with the old value; after the cool-down the
        // trial call clears the suspect entry, and reads are right.
        store.cache().down.store(false, Ordering::SeqCst);
        assert!(
            store.cache().data.contains_key("k"),
            "the stale entry is there"
        );
        assert_eq!(store.get("k").await.unwrap(), Some(b"new".to_vec()));
        clock.advance(Duration::from_secs(10));
        assert_eq!(store.get("k").await.unwrap(), Some(b"new".to_vec()));
        assert_eq!(store.circuit_breaker().state(), CircuitState::Closed);
        assert_eq!(store.get("k").await.unwrap(), Some(b"new".to_vec()));
        assert!(store.stats().hits >= 2, "served from the cache again");
    }
}

mod saga_dispatch {
    use super::*;

    /// Fails with `error` `failures` times, then delivers.
    struct Receiver {
        failures: u32,
        error: fn() -> DispatchError,
        calls: AtomicU32,
    }

    #[async_trait]
    impl CommandDispatcher<&'static str> for Receiver {
        async fn dispatch(&self, _: &SagaCommand<&'static str>) -> Result<(), DispatchError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
                Err((self.error)())
            } else {
                Ok(())
            }
        }
    }

    fn command() -> SagaCommand<&'static str> {
        SagaCommand {
            id: CommandId::new("checkout-1/1"),
            saga_id: SagaId::new("order-1").unwrap(),
            command: "charge",
        }
    }

    async fn deliver(
        receiver: Receiver,
        clock: &TestClock,
        waits: &[u64],
    ) -> (Result<(), DispatchError>, u32) {
        let receiver = Arc::new(receiver);
        let policy = RetryPolicy::new(Backoff::new(ms(50), ms(1000))).with_max_attempts(4);
        let dispatcher = RetryingDispatcher::new(Arc::clone(&receiver), policy, shared(clock));
        let task = tokio::spawn(async move { dispatcher.dispatch(&command()).await });
        for wait in waits {
            advance_once_sleeping(clock, ms(*wait)).await;
        }
        let result = task.await.unwrap();
        (result, receiver.calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn transient_dispatch_failures_are_retried_until_delivered() {
        let clock = TestClock::new();
        let receiver = Receiver {
            failures: 2,
            error: || DispatchError::new("connection reset"),
            calls: AtomicU32::new(0),
        };
        let (result, calls) = deliver(receiver, &clock, &[50, 100]).await;
        result.unwrap();
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn permanent_dispatch_failures_are_not_retried() {
        let clock = TestClock::new();
        let receiver = Receiver {
            failures: 1,
            error: || DispatchError::permanent("unknown account"),
            calls: AtomicU32::new(0),
        };
        let (result, calls) = deliver(receiver, &clock, &[]).await;
        assert_eq!(result.unwrap_err().class(), ErrorClass::Permanent);
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn the_last_transient_failure_is_returned_when_the_policy_gives_up() {
        let clock = TestClock::new();
        let receiver = Receiver {
            failures: u32::MAX,
            error: || DispatchError::new("connection reset"),
            calls: AtomicU32::new(0),
        };
        let (result, calls) = deliver(receiver, &clock, &[50, 100, 200]).await;
        assert_eq!(result.unwrap_err().class(), ErrorClass::Transient);
        assert_eq!(calls, 4);
    }
}

#[test]
fn resilience_codes_are_in_their_range() {
    let ours: HashMap<&str, ErrorCode> = [
        ("open", codes::CIRCUIT_OPEN),
        ("timeout", codes::TIMED_OUT),
        ("bulkhead", codes::BULKHEAD_FULL),
    ]
    .into_iter()
    .collect();
    for code in ours.values() {
        let n: u32 = code.as_str()["CR-E".len()..].parse().unwrap();
        assert!((40..50).contains(&n), "{code}");
        assert!(codes::ALL.contains(code));
    }
}
