//! [`SagaRuntimeBuilder`]: the settings of a [`SagaRuntime`] (clock,
//! upcasters, conflict retries, timeout retry delay, dispatch retries) and
//! the wiring of its shared state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use super::timers::Timers;
use super::{Inner, SagaRuntime};
use crate::clock::{Clock, SystemClock};
use crate::event::{StreamId, Upcasters};
use crate::event_store::EventStore;
use crate::resilience::RetryPolicy;
use crate::saga::{CommandDispatcher, RetryingDispatcher, Saga};
use crate::store::EffectRunner;

/// Configures a [`SagaRuntime`]; from [`SagaRuntime::builder`].
pub struct SagaRuntimeBuilder<S: Saga> {
    saga: S,
    store: Arc<dyn EventStore>,
    dispatcher: Arc<dyn CommandDispatcher<S::Command>>,
    clock: Arc<dyn Clock>,
    upcasters: Upcasters,
    conflict_attempts: usize,
    retry_after: Duration,
    dispatch_retry: Option<RetryPolicy>,
}

impl<S: Saga> std::fmt::Debug for SagaRuntimeBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaRuntimeBuilder")
            .field("kind", &S::KIND)
            .finish_non_exhaustive()
    }
}

impl<S: Saga> SagaRuntimeBuilder<S> {
    /// The defaults; see [`SagaRuntime::builder`].
    pub(super) fn new(
        saga: S,
        store: impl EventStore,
        dispatcher: impl CommandDispatcher<S::Command>,
    ) -> Self {
        Self {
            saga,
            store: Arc::new(store),
            dispatcher: Arc::new(dispatcher),
            clock: Arc::new(SystemClock),
            upcasters: Upcasters::new(),
            conflict_attempts: 3,
            retry_after: Duration::from_secs(1),
            dispatch_retry: None,
        }
    }

    /// The clock timeouts run on and deadlines are computed with (default:
    /// the [`SystemClock`]). Pass a [`TestClock`](crate::TestClock) in
    /// tests, and the same clock your environment uses.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Upcasts the saga's old events when its stream is replayed.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// How many times an event is tried when another writer appends to the
    /// saga's stream first (default 3); each attempt reloads the saga.
    #[must_use]
    pub fn with_conflict_attempts(mut self, attempts: usize) -> Self {
        self.conflict_attempts = attempts.max(1);
        self
    }

    /// How long to wait before trying a timeout again whose handling failed
    /// (the event store was unreachable, say); default one second.
    #[must_use]
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = delay;
        self
    }

    /// Retries a command whose delivery fails transiently (its receiver's
    /// queue was unreachable, say) with `policy`, waiting on the runtime's
    /// clock, before the step gives up on it: the dispatcher is wrapped in a
    /// [`RetryingDispatcher`]. A permanent failure is not retried.
    ///
    /// Without it (the default) a failed delivery is not retried within the
    /// step: the command stays pending, the step reports
    /// [`SagaError::Dispatch`](crate::saga::SagaError::Dispatch), and the
    /// command goes out when the event is delivered again or on
    /// [`retry_pending`](SagaRuntime::retry_pending). With it, it is the
    /// policy's last error that is reported, and the command still stays
    /// pending.
    #[must_use]
    pub fn with_dispatch_retry(mut self, policy: RetryPolicy) -> Self {
        self.dispatch_retry = Some(policy);
        self
    }

    /// The runtime.
    pub fn build(self) -> SagaRuntime<S> {
        // Wrapped here rather than in the setter, so the retries wait on the
        // clock given to `with_clock`, whichever setter came first.
        let dispatcher: Arc<dyn CommandDispatcher<S::Command>> = match self.dispatch_retry {
            Some(policy) => Arc::new(RetryingDispatcher::new(
                self.dispatcher,
                policy,
                Arc::clone(&self.clock),
            )),
            None => self.dispatcher,
        };
        let (activity, _) = watch::channel(0);
        let catalog = StreamId::new(format!("sagas-{}", S::KIND))
            .expect("Saga::KIND must be a short name without control characters");
        SagaRuntime {
            inner: Arc::new(Inner {
                runner: EffectRunner::new(Arc::clone(&self.clock)),
                saga: self.saga,
                store: self.store,
                dispatcher,
                clock: self.clock,
                upcasters: self.upcasters,
                conflict_attempts: self.conflict_attempts,
                retry_after: self.retry_after,
                catalog,
                own_prefix: format!("saga-{}-", S::KIND),
                slots: Mutex::new(HashMap::new()),
                timer_group: TaskTracker::new(),
                timers: Mutex::new(Timers::default()),
                busy: AtomicUsize::new(0),
                activity,
                accepting: AtomicBool::new(true),
                tasks: TaskTracker::new(),
            }),
        }
    }
}
