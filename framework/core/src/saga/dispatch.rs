//! [`CommandDispatcher`]: how a saga's commands leave the runtime.

use std::sync::Arc;

use async_trait::async_trait;

use super::{DispatchError, SagaCommand};
use crate::clock::Clock;
use crate::error::ErrorClass;
use crate::resilience::RetryPolicy;

/// Delivers a saga's commands to whoever carries them out: a command
/// handler in the same process, an aggregate repository, a bus topic, an
/// HTTP client.
///
/// `dispatch` returns `Ok` once the command is handed over (accepted, not
/// necessarily carried out): its outcome comes back to the saga as an
/// event. A business refusal (payment declined) is such an event, not an
/// error; return `Err` only when the command could not be delivered, and the
/// runtime delivers it again later.
///
/// The runtime waits for `dispatch` (one saga's commands go out in order),
/// so put a time limit on network calls and return `Err` when it passes.
///
/// Delivery is **at least once**, so the receiver must use
/// [`SagaCommand::id`] to carry a command out only once. A dispatcher must
/// not wait for the saga itself to handle the outcome (that would wait on the
/// saga's own lock): record the outcome as an event and let it be delivered.
///
/// # Examples
///
/// A dispatcher that hands commands to an in-process outbox, carrying each
/// command id out once:
///
/// ```
/// use std::sync::Mutex;
/// use async_trait::async_trait;
/// use composable_rust_core::saga::{CommandDispatcher, CommandId, DispatchError, SagaCommand, SagaId};
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum PaymentCommand {
///     Charge { cents: u64 },
/// }
///
/// #[derive(Default)]
/// struct Outbox {
///     sent: Mutex<Vec<SagaCommand<PaymentCommand>>>,
/// }
///
/// #[async_trait]
/// impl CommandDispatcher<PaymentCommand> for Outbox {
///     async fn dispatch(&self, command: &SagaCommand<PaymentCommand>) -> Result<(), DispatchError> {
///         let mut sent = self.sent.lock().unwrap();
///         if !sent.iter().any(|done| done.id == command.id) {
///             sent.push(command.clone());
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let outbox = Outbox::default();
/// let command = SagaCommand {
///     id: CommandId::new("checkout-order-1/1"),
///     saga_id: SagaId::new("order-1")?,
///     command: PaymentCommand::Charge { cents: 500 },
/// };
/// outbox.dispatch(&command).await?;
/// outbox.dispatch(&command).await?; // delivered again after a crash: carried out once
/// assert_eq!(outbox.sent.lock().unwrap().len(), 1);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait CommandDispatcher<C>: Send + Sync + 'static {
    /// Hands `command` over to its receiver.
    async fn dispatch(&self, command: &SagaCommand<C>) -> Result<(), DispatchError>;
}

impl<C> std::fmt::Debug for dyn CommandDispatcher<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn CommandDispatcher")
    }
}

#[async_trait]
impl<C, D> CommandDispatcher<C> for Arc<D>
where
    C: Send + Sync + 'static,
    D: CommandDispatcher<C> + ?Sized,
{
    async fn dispatch(&self, command: &SagaCommand<C>) -> Result<(), DispatchError> {
        (**self).dispatch(command).await
    }
}

/// A [`CommandDispatcher`] that delivers through `D` and retries transient
/// [`DispatchError`]s with a [`RetryPolicy`], waiting on a [`Clock`]. A
/// permanent error, or the last transient one when the policy gives up, is
/// returned, and the command stays pending as usual.
///
/// The runtime waits for `dispatch`, so keep the policy's
/// [`max_elapsed`](RetryPolicy::with_max_elapsed) short: one saga's events
/// wait while its command is retried.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use composable_rust_core::resilience::{Backoff, RetryPolicy};
/// use composable_rust_core::saga::{CommandDispatcher, CommandId, DispatchError, RetryingDispatcher, SagaCommand, SagaId};
/// use composable_rust_core::TestClock;
///
/// /// Fails once, then delivers.
/// #[derive(Default)]
/// struct Flaky(AtomicU32);
///
/// #[async_trait]
/// impl CommandDispatcher<&'static str> for Flaky {
///     async fn dispatch(&self, _: &SagaCommand<&'static str>) -> Result<(), DispatchError> {
///         match self.0.fetch_add(1, Ordering::SeqCst) {
///             0 => Err(DispatchError::new("connection reset")),
///             _ => Ok(()),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let clock = TestClock::new();
/// let policy = RetryPolicy::new(Backoff::new(Duration::from_millis(50), Duration::from_secs(1)));
/// let flaky = Arc::new(Flaky::default());
/// let dispatcher = RetryingDispatcher::new(Arc::clone(&flaky), policy, Arc::new(clock.clone()));
/// let command = SagaCommand { id: CommandId::new("c-1"), saga_id: SagaId::new("order-1")?, command: "charge" };
///
/// let delivering = tokio::spawn(async move { dispatcher.dispatch(&command).await });
/// while clock.pending_sleepers() == 0 {
///     tokio::task::yield_now().await;
/// }
/// clock.advance(Duration::from_millis(50));
/// delivering.await??;
/// assert_eq!(flaky.0.load(Ordering::SeqCst), 2, "one failure, one retry");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RetryingDispatcher<D> {
    inner: D,
    policy: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl<D> RetryingDispatcher<D> {
    /// Delivers through `inner`, retrying transient failures with `policy`
    /// on `clock`.
    pub fn new(inner: D, policy: RetryPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner,
            policy,
            clock,
        }
    }

    /// The dispatcher it delivers through.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

#[async_trait]
impl<C, D> CommandDispatcher<C> for RetryingDispatcher<D>
where
    C: Send + Sync + 'static,
    D: CommandDispatcher<C>,
{
    async fn dispatch(&self, command: &SagaCommand<C>) -> Result<(), DispatchError> {
        self.policy
            .retry_when(
                &self.clock,
                || self.inner.dispatch(command),
                |error: &DispatchError| error.class() == ErrorClass::Transient,
            )
            .await
    }
}
