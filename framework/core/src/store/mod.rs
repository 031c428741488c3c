//! The [`Store`]: the runtime that owns state, runs the reducer and runs
//! the effects it returns.
//!
//! ```text
//! send(action) ──► reducer(&mut state, action, &env) ──► effects ──► tokio tasks
//!      ▲                                                                 │
//!      └──────────────── actions the effects feed back ◄────────────────┘
//! ```

pub(crate) mod runner;

use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_util::task::TaskTracker;

pub(crate) use runner::{ActionSink, EffectRunner};

use crate::clock::{Clock, SystemClock};
use crate::effect::BoxFuture;
use crate::error::StoreError;
use crate::metrics::StoreMetrics;
use crate::reducer::Reducer;

/// How many actions a slow [`Store::subscribe_actions`] receiver may fall
/// behind before it starts missing some.
const ACTION_BUFFER: usize = 1024;

/// Owns a feature's state and runs it.
///
/// [`send`](Store::send) runs the reducer synchronously (the state is
/// updated when `send` returns), then runs the returned effects on tokio and
/// feeds the actions they produce back into the reducer. Awaiting the
/// returned [`SendHandle`] waits until that action's effects, and the
/// effects of every action they fed back, have finished.
///
/// Cloning a `Store` gives another handle to the same store.
///
/// ```
/// use composable_rust_core::{Effect, Effects, Reducer, Store};
///
/// struct Counter;
/// #[derive(Debug, Clone)]
/// enum Action { Increment, IncrementLater }
///
/// impl Reducer for Counter {
///     type State = u32;
///     type Action = Action;
///     type Environment = ();
///     fn reduce(&self, count: &mut u32, action: Action, _: &()) -> Effects<Action> {
///         match action {
///             Action::Increment => { *count += 1; Effects::new() }
///             Action::IncrementLater => vec![Effect::send(Action::Increment)],
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = Store::new(0, Counter, ());
/// store.send(Action::IncrementLater).await.unwrap();
/// assert_eq!(store.state(|count| *count), 1);
/// # }
/// ```
pub struct Store<R: Reducer> {
    inner: Arc<Inner<R>>,
}

struct Inner<R: Reducer> {
    reducer: R,
    env: R::Environment,
    state: RwLock<R::State>,
    runner: EffectRunner,
    metrics: StoreMetrics,
    version: watch::Sender<u64>,
    actions: broadcast::Sender<R::Action>,
    accepting: AtomicBool,
}

impl<R: Reducer> Clone for Store<R> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// Builds a [`Store`]; from [`Store::builder`].
pub struct StoreBuilder<R: Reducer> {
    initial_state: R::State,
    reducer: R,
    environment: R::Environment,
    clock: Arc<dyn Clock>,
}

impl<R> StoreBuilder<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Send + Sync + 'static,
    R::Action: Clone + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    /// The store's [`Effect::delay`](crate::Effect::delay)s wait on `clock`
    /// (default: the system clock). Pass the same clock your environment
    /// uses.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The store.
    pub fn build(self) -> Store<R> {
        Store::from_builder(self)
    }
}

impl<R: Reducer> std::fmt::Debug for StoreBuilder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBuilder").finish_non_exhaustive()
    }
}

impl<R> Store<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Send + Sync + 'static,
    R::Action: Clone + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    /// A store whose delays wait on the [`SystemClock`].
    pub fn new(initial_state: R::State, reducer: R, environment: R::Environment) -> Self {
        Self::builder(initial_state, reducer, environment).build()
    }

    /// A store with settings: `Store::builder(state, reducer, environment)
    /// .with_clock(clock).build()`.
    pub fn builder(
        initial_state: R::State,
        reducer: R,
        environment: R::Environment,
    ) -> StoreBuilder<R> {
        StoreBuilder {
            initial_state,
            reducer,
            environment,
            clock: Arc::new(SystemClock),
        }
    }

    fn from_builder(builder: StoreBuilder<R>) -> Self {
        let StoreBuilder {
            initial_state,
            reducer,
            environment,
            clock,
        } = builder;
        let (version, _) = watch::channel(0);
        let (actions, _) = broadcast::channel(ACTION_BUFFER);
        let metrics = StoreMetrics::for_reducer::<R>();
        Self {
            inner: Arc::new(Inner {
                reducer,
                env: environment,
                state: RwLock::new(initial_state),
                runner: EffectRunner::metered(clock, metrics.clone()),
                metrics,
                version,
                actions,
                accepting: AtomicBool::new(true),
            }),
        }
    }

    /// Runs `action` through the reducer now and starts its effects.
    ///
    /// Awaiting the handle waits for those effects and everything they feed
    /// back; dropping it lets them run on. After [`shutdown`](Self::shutdown)
    /// the action is not run and the handle resolves to
    /// [`StoreError::ShutDown`].
    ///
    /// Must be called within a tokio runtime when the reducer returns effects.
    pub fn send(&self, action: R::Action) -> SendHandle {
        if !self.inner.accepting.load(Ordering::SeqCst) {
            return SendHandle { group: None };
        }
        let group = TaskTracker::new();
        Inner::dispatch(&self.inner, action, &group);
        SendHandle { group: Some(group) }
    }

    /// Reads the state through `read`. Keep `read` short: the reducer waits
    /// while it runs.
    pub fn state<T>(&self, read: impl FnOnce(&R::State) -> T) -> T {
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        read(&state)
    }

    /// A receiver whose value increases every time an action is reduced;
    /// await `changed()` on it, then read with [`state`](Self::state).
    pub fn subscribe_state(&self) -> watch::Receiver<u64> {
        self.inner.version.subscribe()
    }

    /// A receiver of every action reduced from now on (after the state
    /// change it caused). A receiver that falls more than 1024 actions
    /// behind misses the oldest ones and is told so with
    /// `RecvError::Lagged`.
    pub fn subscribe_actions(&self) -> broadcast::Receiver<R::Action> {
        self.inner.actions.subscribe()
    }

    /// How many effect tasks are running.
    pub fn in_flight(&self) -> usize {
        self.inner.runner.in_flight()
    }

    /// Stops accepting actions, then waits up to `deadline` for running
    /// effects (and the actions they feed back) to finish. Effects still
    /// running at the deadline are cancelled and send nothing back, and the
    /// result is [`StoreError::ShutdownTimedOut`].
    pub async fn shutdown(&self, deadline: Duration) -> Result<(), StoreError> {
        self.inner.accepting.store(false, Ordering::SeqCst);
        self.inner
            .runner
            .drain(deadline)
            .await
            .map_err(|in_flight| StoreError::ShutdownTimedOut {
                in_flight,
                deadline,
            })
    }
}

impl<R> Inner<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Send + Sync + 'static,
    R::Action: Clone + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    fn dispatch(this: &Arc<Self>, action: R::Action, group: &TaskTracker) {
        // Debug level: one span per action is too many for an info-level
        // subscriber. The effects below are spawned inside it, so their
        // `store.effect` spans are its children (see `crate::trace`).
        let span = tracing::debug_span!("store.send", action = std::any::type_name::<R::Action>());
        let _entered = span.enter();
        let effects = {
            let mut state = this.state.write().unwrap_or_else(PoisonError::into_inner);
            this.reducer.reduce(&mut state, action.clone(), &this.env)
        };
        this.version.send_modify(|version| *version += 1);
        this.metrics.action();
        // No subscribers is fine: nobody is listening.
        let _ = this.actions.send(action);
        if effects.is_empty() {
            return;
        }
        let store = Arc::clone(this);
        let follow_up_group = group.clone();
        let sink: ActionSink<R::Action> =
            Arc::new(move |action| Inner::dispatch(&store, action, &follow_up_group));
        for effect in effects {
            this.runner.run(effect, group, &sink);
        }
    }
}

impl<R: Reducer> std::fmt::Debug for Store<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("runner", &self.inner.runner)
            .finish_non_exhaustive()
    }
}

/// Returned by [`Store::send`]; await it to wait for the action's effects.
#[derive(Debug)]
pub struct SendHandle {
    group: Option<TaskTracker>,
}

impl SendHandle {
    /// Whether the store refused the action because it is shutting down.
    pub fn was_rejected(&self) -> bool {
        self.group.is_none()
    }

    /// How many of this action's effect tasks are still running.
    pub fn in_flight(&self) -> usize {
        self.group.as_ref().map_or(0, TaskTracker::len)
    }
}

impl IntoFuture for SendHandle {
    type Output = Result<(), StoreError>;
    type IntoFuture = BoxFuture<Result<(), StoreError>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let group = self.group.ok_or(StoreError::ShutDown)?;
            group.close();
            group.wait().await;
            Ok(())
        })
    }
}
