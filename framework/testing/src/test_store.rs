//! [`TestStore`]: exhaustive, step-by-step testing of a feature, in the
//! manner of The Composable Architecture's `TestStore`.
//!
//! Every step states what the state must look like afterwards, by mutating
//! a copy of the previous state; any difference fails the test with a diff.
//! Actions fed back by effects are queued, not reduced, until the test
//! asserts them with [`receive`](TestStore::receive), so nothing happens
//! behind the test's back. The test fails if it ends while an effect is
//! still running or a fed-back action was never asserted.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::__private::{ActionSink, EffectRunner};
use composable_rust_core::{Reducer, TestClock};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::diff::diff;

/// How long [`TestStore::receive`] and [`TestStore::finish`] wait for
/// effects by default. Only failing tests ever wait this long.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Drives a reducer step by step and asserts everything that happens.
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::{Effect, Effects, Reducer};
/// use composable_rust_testing::TestStore;
///
/// #[derive(Debug, Clone, PartialEq, Default)]
/// struct Timer { ticks: u32, running: bool }
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Action { Start, Tick, Stop }
///
/// struct TimerReducer;
/// impl Reducer for TimerReducer {
///     type State = Timer;
///     type Action = Action;
///     type Environment = ();
///     fn reduce(&self, state: &mut Timer, action: Action, _: &()) -> Effects<Action> {
///         match action {
///             Action::Start => {
///                 state.running = true;
///                 vec![Effect::delay(Duration::from_secs(1), Action::Tick).cancellable("timer")]
///             }
///             Action::Tick => {
///                 state.ticks += 1;
///                 vec![Effect::delay(Duration::from_secs(1), Action::Tick).cancellable("timer")]
///             }
///             Action::Stop => {
///                 state.running = false;
///                 vec![Effect::cancel("timer")]
///             }
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut store = TestStore::new(Timer::default(), TimerReducer, ());
/// store.send(Action::Start, |s| s.running = true).await;
/// store.advance(Duration::from_secs(1)).await;
/// store.receive(Action::Tick, |s| s.ticks = 1).await;
/// store.send(Action::Stop, |s| s.running = false).await;
/// store.finish().await;
/// # }
/// ```
pub struct TestStore<R>
where
    R: Reducer,
    R::Action: Debug + Send + 'static,
{
    reducer: R,
    env: R::Environment,
    state: R::State,
    clock: TestClock,
    runner: EffectRunner,
    group: TaskTracker,
    sink: ActionSink<R::Action>,
    incoming: mpsc::UnboundedReceiver<R::Action>,
    received: VecDeque<R::Action>,
    timeout: Duration,
    finished: bool,
}

impl<R> TestStore<R>
where
    R: Reducer,
    R::State: Clone + PartialEq + Debug,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
{
    /// A test store with its own [`TestClock`]. If your environment has a
    /// clock too, build it from the same clock and pass that clock to
    /// [`with_clock`](Self::with_clock).
    pub fn new(initial_state: R::State, reducer: R, environment: R::Environment) -> Self {
        let clock = TestClock::new();
        let (tx, incoming) = mpsc::unbounded_channel();
        let sink: ActionSink<R::Action> = Arc::new(move |action| {
            // The receiver lives as long as the store; after the store is
            // gone nobody is asserting anything, so dropping is right.
            let _ = tx.send(action);
        });
        Self {
            reducer,
            env: environment,
            state: initial_state,
            runner: EffectRunner::new(Arc::new(clock.clone())),
            clock,
            group: TaskTracker::new(),
            sink,
            incoming,
            received: VecDeque::new(),
            timeout: DEFAULT_TIMEOUT,
            finished: false,
        }
    }

    /// Runs delays on `clock` (share it with your environment).
    #[must_use]
    pub fn with_clock(mut self, clock: TestClock) -> Self {
        self.runner = EffectRunner::new(Arc::new(clock.clone()));
        self.clock = clock;
        self
    }

    /// How long to wait for an expected action or for effects to finish
    /// before failing (default one second).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The current state.
    pub fn state(&self) -> &R::State {
        &self.state
    }

    /// The environment the reducer runs with.
    pub fn environment(&self) -> &R::Environment {
        &self.env
    }

    /// The clock delays wait on.
    pub fn clock(&self) -> &TestClock {
        &self.clock
    }

    /// Sends `action` and asserts the resulting state: `expect` receives a
    /// copy of the state before the action and must change it into exactly
    /// the state the reducer produces.
    ///
    /// Panics if a fed-back action is still waiting to be
    /// [`receive`](Self::receive)d: assert it first.
    pub async fn send(&mut self, action: R::Action, expect: impl FnOnce(&mut R::State)) {
        self.collect_received();
        if !self.received.is_empty() {
            panic!(
                "sent {action:?} while {} fed-back action(s) were still unasserted:\n{}\n\
                 assert them with store.receive(...) before sending another action",
                self.received.len(),
                list(&self.received)
            );
        }
        let step = format!("send({action:?})");
        self.step(action, &step, expect);
        tokio::task::yield_now().await;
    }

    /// Waits for the next action an effect feeds back, asserts it equals
    /// `expected`, runs it through the reducer and asserts the state as in
    /// [`send`](Self::send).
    pub async fn receive(&mut self, expected: R::Action, expect: impl FnOnce(&mut R::State)) {
        let Some(action) = self.next_received().await else {
            panic!(
                "expected to receive {expected:?}, but no action arrived within {:?}; {}",
                self.timeout,
                self.running_summary()
            );
        };
        if action != expected {
            panic!(
                "received an action other than the one expected {}",
                diff(&expected, &action)
            );
        }
        let step = format!("receive({action:?})");
        self.step(action, &step, expect);
        tokio::task::yield_now().await;
    }

    /// Moves the test clock forward, letting due delays fire.
    pub async fn advance(&mut self, duration: Duration) {
        self.clock.advance(duration);
        tokio::task::yield_now().await;
    }

    /// Ends the test: waits for running effects to finish, then fails if
    /// any are still running or any fed-back action was never asserted.
    pub async fn finish(mut self) {
        self.finished = true;
        self.group.close();
        let idle = tokio::time::timeout(self.timeout, self.group.wait())
            .await
            .is_ok();
        if !idle {
            let summary = self.running_summary();
            self.runner.cancel_all();
            panic!("the test ended while effects were still running: {summary}");
        }
        self.collect_received();
        if !self.received.is_empty() {
            panic!(
                "the test ended with {} fed-back action(s) never asserted:\n{}\n\
                 assert them with store.receive(...)",
                self.received.len(),
                list(&self.received)
            );
        }
    }

    fn step(&mut self, action: R::Action, step: &str, expect: impl FnOnce(&mut R::State)) {
        let mut expected = self.state.clone();
        expect(&mut expected);
        let effects = self.reducer.reduce(&mut self.state, action, &self.env);
        if self.state != expected {
            panic!(
                "the state after {step} is not the expected state {}",
                diff(&expected, &self.state)
            );
        }
        for effect in effects {
            self.runner.run(effect, &self.group, &self.sink);
        }
    }

    async fn next_received(&mut self) -> Option<R::Action> {
        self.collect_received();
        if let Some(action) = self.received.pop_front() {
            return Some(action);
        }
        tokio::time::timeout(self.timeout, self.incoming.recv())
            .await
            .ok()
            .flatten()
    }

    fn running_summary(&self) -> String {
        let sleepers = self.clock.pending_sleepers();
        let mut summary = format!("{} effect(s) still running", self.runner.in_flight());
        if sleepers > 0 {
            summary.push_str(&format!(
                ", {sleepers} of them waiting on the test clock (call store.advance(..) \
                 to let time pass, or cancel them)"
            ));
        }
        summary
    }
}

impl<R> TestStore<R>
where
    R: Reducer,
    R::Action: Debug + Send + 'static,
{
    fn collect_received(&mut self) {
        while let Ok(action) = self.incoming.try_recv() {
            self.received.push_back(action);
        }
    }
}

impl<R> Drop for TestStore<R>
where
    R: Reducer,
    R::Action: Debug + Send + 'static,
{
    fn drop(&mut self) {
        let in_flight = self.runner.in_flight();
        // Never let a test's effects leak into the next test.
        self.runner.cancel_all();
        if self.finished || std::thread::panicking() {
            return;
        }
        self.collect_received();
        if in_flight > 0 {
            panic!(
                "the TestStore was dropped while {in_flight} effect(s) were still running; \
                 end the test with `store.finish().await` to wait for them, advance the \
                 test clock, or cancel them"
            );
        }
        if !self.received.is_empty() {
            panic!(
                "the TestStore was dropped with {} fed-back action(s) never asserted:\n{}\n\
                 assert them with store.receive(...)",
                self.received.len(),
                list(&self.received)
            );
        }
    }
}

fn list<A: Debug>(actions: &VecDeque<A>) -> String {
    actions
        .iter()
        .map(|a| format!("  - {a:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl<R> Debug for TestStore<R>
where
    R: Reducer,
    R::State: Debug,
    R::Action: Debug + Send + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore")
            .field("state", &self.state)
            .field("received", &self.received)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
