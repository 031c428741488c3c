//! [`Effect`]: work described as a value.
//!
//! A reducer never performs I/O. It returns effects, and the [`Store`]
//! (or a `TestStore` in tests) runs them. Because an effect is a value, a
//! test can inspect it without running it.
//!
//! [`Store`]: crate::Store

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed, sendable future, the shape every asynchronous effect takes.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The effects a reducer returns for one action. They run concurrently;
/// an empty list (`Effects::new()`) means there is nothing more to do.
pub type Effects<A> = Vec<Effect<A>>;

/// Identifies effects that can be cancelled together (see
/// [`Effect::cancellable`] and [`Effect::cancel`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EffectId(Arc<str>);

impl EffectId {
    /// Creates an id from any string, e.g. `EffectId::new(format!("cleanup-{id}"))`.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EffectId({:?})", &*self.0)
    }
}

impl fmt::Display for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EffectId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl From<String> for EffectId {
    fn from(id: String) -> Self {
        Self::new(id)
    }
}

/// A description of work for the runtime to perform.
///
/// Build effects with the constructors ([`Effect::future`],
/// [`Effect::delay`], ...) rather than the variants; match on the variants
/// (or on [`Effect::kind`]) when a test inspects what a reducer returned.
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::{Effect, EffectKind};
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Action {
///     Fetch,
///     Fetched(u32),
///     Expire,
/// }
///
/// // Work to do later, as values: nothing runs here.
/// let fetch: Effect<Action> = Effect::future(async { Some(Action::Fetched(42)) });
/// let expiry = Effect::delay(Duration::from_secs(60), Action::Expire).cancellable("expiry");
/// let both = Effect::parallel([fetch, expiry]);
/// assert_eq!(both.kind(), EffectKind::Parallel);
///
/// // Effects of a child feature are mapped into the parent's actions.
/// #[derive(Debug)]
/// enum AppAction {
///     Child(Action),
/// }
/// let mapped: Effect<AppAction> = Effect::send(Action::Fetch).map(AppAction::Child);
/// assert_eq!(mapped.kind(), EffectKind::Future); // `send` is a future that is ready
/// ```
pub enum Effect<A> {
    /// Nothing to do.
    None,
    /// Run a future; if it yields `Some(action)`, feed the action back.
    Future(BoxFuture<Option<A>>),
    /// Wait `duration` on the runtime's clock, then feed `action` back.
    Delay {
        /// How long to wait.
        duration: Duration,
        /// The action to feed back when the time is up.
        action: A,
    },
    /// Run all of these concurrently; done when all are done.
    Parallel(Vec<Effect<A>>),
    /// Run these one after another; each starts when the previous is done.
    Sequential(Vec<Effect<A>>),
    /// Run `effect`, but let [`Effect::Cancel`] with the same id stop it.
    Cancellable {
        /// The id that cancels this effect.
        id: EffectId,
        /// The effect to run.
        effect: Box<Effect<A>>,
    },
    /// Cancel every running effect registered under this id. A cancelled
    /// effect sends nothing back.
    Cancel(EffectId),
}

/// The variant of an [`Effect`], without its payload; handy in assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EffectKind {
    /// [`Effect::None`]
    None,
    /// [`Effect::Future`]
    Future,
    /// [`Effect::Delay`]
    Delay,
    /// [`Effect::Parallel`]
    Parallel,
    /// [`Effect::Sequential`]
    Sequential,
    /// [`Effect::Cancellable`]
    Cancellable,
    /// [`Effect::Cancel`]
    Cancel,
}

impl<A> Effect<A> {
    /// An effect that does nothing.
    pub fn none() -> Self {
        Self::None
    }

    /// Runs `future`; the action it yields, if any, is fed back to the reducer.
    pub fn future<F>(future: F) -> Self
    where
        F: Future<Output = Option<A>> + Send + 'static,
    {
        Self::Future(Box::pin(future))
    }

    /// Runs `future` for its side effect only; nothing is fed back.
    pub fn fire_and_forget<F>(future: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
        A: 'static,
    {
        Self::future(async move {
            future.await;
            None
        })
    }

    /// Feeds `action` back to the reducer right away.
    pub fn send(action: A) -> Self
    where
        A: Send + 'static,
    {
        Self::future(std::future::ready(Some(action)))
    }

    /// Feeds `action` back after `duration` has passed on the runtime's clock.
    /// Under a [`TestClock`](crate::TestClock) no real time passes.
    pub fn delay(duration: Duration, action: A) -> Self {
        Self::Delay { duration, action }
    }

    /// Runs all `effects` concurrently.
    pub fn parallel(effects: impl IntoIterator<Item = Effect<A>>) -> Self {
        Self::Parallel(effects.into_iter().collect())
    }

    /// Runs `effects` one after another.
    pub fn sequential(effects: impl IntoIterator<Item = Effect<A>>) -> Self {
        Self::Sequential(effects.into_iter().collect())
    }

    /// Makes this effect cancellable with [`Effect::cancel`]`(id)`.
    #[must_use]
    pub fn cancellable(self, id: impl Into<EffectId>) -> Self {
        Self::Cancellable {
            id: id.into(),
            effect: Box::new(self),
        }
    }

    /// Cancels every running effect registered under `id`.
    pub fn cancel(id: impl Into<EffectId>) -> Self {
        Self::Cancel(id.into())
    }

    /// The variant of this effect.
    pub fn kind(&self) -> EffectKind {
        match self {
            Self::None => EffectKind::None,
            Self::Future(_) => EffectKind::Future,
            Self::Delay { .. } => EffectKind::Delay,
            Self::Parallel(_) => EffectKind::Parallel,
            Self::Sequential(_) => EffectKind::Sequential,
            Self::Cancellable { .. } => EffectKind::Cancellable,
            Self::Cancel(_) => EffectKind::Cancel,
        }
    }

    /// Turns the actions this effect feeds back into another action type.
    /// Used to embed a child feature's effects in its parent (see
    /// [`scope`](crate::scope)).
    pub fn map<B, F>(self, f: F) -> Effect<B>
    where
        A: Send + 'static,
        B: Send + 'static,
        F: Fn(A) -> B + Send + Sync + 'static,
    {
        self.map_shared(&Arc::new(f))
    }

    fn map_shared<B, F>(self, f: &Arc<F>) -> Effect<B>
    where
        A: Send + 'static,
        B: Send + 'static,
        F: Fn(A) -> B + Send + Sync + 'static,
    {
        match self {
            Self::None => Effect::None,
            Self::Future(future) => {
                let f = Arc::clone(f);
                Effect::future(async move { future.await.map(|action| f(action)) })
            }
            Self::Delay { duration, action } => Effect::Delay {
                duration,
                action: f(action),
            },
            Self::Parallel(effects) => {
                Effect::Parallel(effects.into_iter().map(|e| e.map_shared(f)).collect())
            }
            Self::Sequential(effects) => {
                Effect::Sequential(effects.into_iter().map(|e| e.map_shared(f)).collect())
            }
            Self::Cancellable { id, effect } => Effect::Cancellable {
                id,
                effect: Box::new(effect.map_shared(f)),
            },
            Self::Cancel(id) => Effect::Cancel(id),
        }
    }
}

impl<A: fmt::Debug> fmt::Debug for Effect<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("Effect::None"),
            Self::Future(_) => f.write_str("Effect::Future(..)"),
            Self::Delay { duration, action } => f
                .debug_struct("Effect::Delay")
                .field("duration", duration)
                .field("action", action)
                .finish(),
            Self::Parallel(effects) => f.debug_tuple("Effect::Parallel").field(effects).finish(),
            Self::Sequential(effects) => {
                f.debug_tuple("Effect::Sequential").field(effects).finish()
            }
            Self::Cancellable { id, effect } => f
                .debug_struct("Effect::Cancellable")
                .field("id", id)
                .field("effect", effect)
                .finish(),
            Self::Cancel(id) => f.debug_tuple("Effect::Cancel").field(id).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_the_variant() {
        assert_eq!(Effect::<u8>::none().kind(), EffectKind::None);
        assert_eq!(
            Effect::delay(Duration::from_secs(1), 1u8).kind(),
            EffectKind::Delay
        );
        assert_eq!(Effect::<u8>::cancel("x").kind(), EffectKind::Cancel);
        assert_eq!(
            Effect::send(1u8).cancellable("x").kind(),
            EffectKind::Cancellable
        );
    }

    #[test]
    fn map_rewrites_delayed_actions_inside_groups() {
        let effect = Effect::sequential([Effect::delay(Duration::from_secs(2), 20u8)])
            .cancellable("t")
            .map(|n| format!("n={n}"));
        let Effect::Cancellable { id, effect } = effect else {
            panic!("map must keep the cancellable wrapper");
        };
        assert_eq!(id.as_str(), "t");
        let Effect::Sequential(inner) = *effect else {
            panic!("map must keep the sequential group");
        };
        assert!(matches!(&inner[0], Effect::Delay { action, .. } if action == "n=20"));
    }

    #[tokio::test]
    async fn map_rewrites_the_output_of_futures() {
        let Effect::Future(future) = Effect::send(2u8).map(|n| u32::from(n) * 10) else {
            panic!("map must keep the future");
        };
        assert_eq!(future.await, Some(20));
    }
}
