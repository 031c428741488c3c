//! [`EffectRunner`]: turns [`Effect`] values into running tokio tasks.
//!
//! Both the production [`Store`](crate::Store) and the test store in
//! `composable-rust-testing` run effects with this one runner; they differ
//! only in what they do with the actions effects feed back (the *sink*).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::effect::{BoxFuture, Effect, EffectId};
use crate::metrics::StoreMetrics;

/// Where the actions produced by effects go.
pub type ActionSink<A> = Arc<dyn Fn(A) + Send + Sync>;

/// Runs effects on tokio, tracks them, and cancels them by id.
///
/// Cloning gives another handle to the same runner. You rarely need this
/// type directly; [`Store`](crate::Store) uses it for you.
#[derive(Clone)]
pub struct EffectRunner {
    shared: Arc<Shared>,
}

struct Shared {
    clock: Arc<dyn Clock>,
    /// The owning store's effect metrics; `None` for runners that are not
    /// a store's (the test store, saga timers).
    metrics: Option<StoreMetrics>,
    tracker: TaskTracker,
    root: CancellationToken,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next_key: u64,
    by_id: HashMap<EffectId, Vec<(u64, CancellationToken)>>,
}

impl EffectRunner {
    /// A runner whose delays wait on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::from_parts(clock, None)
    }

    /// A runner that records its store's effect metrics.
    pub(crate) fn metered(clock: Arc<dyn Clock>, metrics: StoreMetrics) -> Self {
        Self::from_parts(clock, Some(metrics))
    }

    fn from_parts(clock: Arc<dyn Clock>, metrics: Option<StoreMetrics>) -> Self {
        Self {
            shared: Arc::new(Shared {
                clock,
                metrics,
                tracker: TaskTracker::new(),
                root: CancellationToken::new(),
                registry: Mutex::new(Registry::default()),
            }),
        }
    }

    /// The clock delays wait on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// Starts `effect`. Cancellations and cancellable registrations take
    /// effect immediately, in the order the effects are given; the
    /// asynchronous part runs as tasks spawned on `group` (so a caller can
    /// wait for everything one action started) and counted by the runner.
    /// Actions the effect yields go to `sink`, unless it was cancelled.
    ///
    /// Must be called within a tokio runtime.
    pub fn run<A: Send + 'static>(
        &self,
        effect: Effect<A>,
        group: &TaskTracker,
        sink: &ActionSink<A>,
    ) {
        if let Some(task) = self.start(effect, group, sink, self.shared.root.clone()) {
            let task = match &self.shared.metrics {
                // Counted from now until the task ends or is dropped.
                Some(metrics) => {
                    let timer = metrics.effect_started();
                    Box::pin(async move {
                        task.await;
                        drop(timer);
                    })
                }
                None => task,
            };
            self.spawn(task, group);
        }
    }

    /// How many effect tasks are running.
    pub fn in_flight(&self) -> usize {
        self.shared.tracker.len()
    }

    /// Waits up to `deadline` for every running effect to finish. If some
    /// are still running then, cancels them all and returns how many there
    /// were.
    pub async fn drain(&self, deadline: Duration) -> Result<(), usize> {
        let tracker = &self.shared.tracker;
        tracker.close();
        if tokio::time::timeout(deadline, tracker.wait()).await.is_ok() {
            return Ok(());
        }
        let still_running = tracker.len();
        self.cancel_all();
        tracker.wait().await;
        Err(still_running)
    }

    /// Cancels every running effect; none of them sends anything back.
    pub fn cancel_all(&self) {
        self.shared.root.cancel();
    }

    /// Cancels the effects registered under `id`.
    pub fn cancel(&self, id: &EffectId) {
        let tokens = self.registry().by_id.remove(id).unwrap_or_default();
        for (_, token) in tokens {
            token.cancel();
        }
    }

    fn spawn(&self, task: BoxFuture<()>, group: &TaskTracker) -> tokio::task::JoinHandle<()> {
        // A child of the span current here (the action's `store.send`), so
        // an append inside the effect belongs to the command's trace.
        let task = tracing::Instrument::instrument(task, tracing::debug_span!("store.effect"));
        group.spawn(self.shared.tracker.track_future(task))
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.shared
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, id: &EffectId, token: CancellationToken) -> u64 {
        let mut registry = self.registry();
        registry.next_key += 1;
        let key = registry.next_key;
        registry
            .by_id
            .entry(id.clone())
            .or_default()
            .push((key, token));
        key
    }

    fn deregister(&self, id: &EffectId, key: u64) {
        let mut registry = self.registry();
        if let Some(tokens) = registry.by_id.get_mut(id) {
            tokens.retain(|(k, _)| *k != key);
            if tokens.is_empty() {
                registry.by_id.remove(id);
            }
        }
    }

    /// Does the synchronous part of `effect` now and returns the rest as a
    /// future, or `None` when nothing asynchronous is left.
    fn start<A: Send + 'static>(
        &self,
        effect: Effect<A>,
        group: &TaskTracker,
        sink: &ActionSink<A>,
        token: CancellationToken,
    ) -> Option<BoxFuture<()>> {
        match effect {
            Effect::None => None,
            Effect::Cancel(id) => {
                self.cancel(&id);
                None
            }
            Effect::Future(future) => {
                let sink = Arc::clone(sink);
                Some(Box::pin(async move {
                    tokio::select! {
                        biased;
                        () = token.cancelled() => {}
                        output = future => {
                            if let Some(action) = output
                                && !token.is_cancelled() {
                                    sink(action);
                                }
                        }
                    }
                }))
            }
            Effect::Delay { duration, action } => {
                // Register with the clock now, so time advanced right after
                // the action was sent already counts.
                let sleep = self.shared.clock.sleep(duration);
                let sink = Arc::clone(sink);
                Some(Box::pin(async move {
                    tokio::select! {
                        biased;
                        () = token.cancelled() => {}
                        () = sleep => {
                            if !token.is_cancelled() {
                                sink(action);
                            }
                        }
                    }
                }))
            }
            Effect::Parallel(effects) => {
                let tasks: Vec<_> = effects
                    .into_iter()
                    .filter_map(|effect| self.start(effect, group, sink, token.clone()))
                    .collect();
                if tasks.is_empty() {
                    return None;
                }
                let handles: Vec<_> = tasks
                    .into_iter()
                    .map(|task| self.spawn(task, group))
                    .collect();
                Some(Box::pin(async move {
                    for handle in handles {
                        // A panicking effect is reported by tokio; the
                        // others keep running.
                        let _ = handle.await;
                    }
                }))
            }
            Effect::Sequential(effects) => {
                let runner = self.clone();
                let group = group.clone();
                let sink = Arc::clone(sink);
                Some(Box::pin(async move {
                    for effect in effects {
                        if token.is_cancelled() {
                            break;
                        }
                        if let Some(task) = runner.start(effect, &group, &sink, token.clone()) {
                            task.await;
                        }
                    }
                }))
            }
            Effect::Cancellable { id, effect } => {
                let child = token.child_token();
                let key = self.register(&id, child.clone());
                let Some(task) = self.start(*effect, group, sink, child) else {
                    self.deregister(&id, key);
                    return None;
                };
                let runner = self.clone();
                Some(Box::pin(async move {
                    task.await;
                    runner.deregister(&id, key);
                }))
            }
        }
    }
}

impl std::fmt::Debug for EffectRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EffectRunner")
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}
