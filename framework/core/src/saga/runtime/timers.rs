//! Saga timeouts on the runtime's clock: arming each one as a cancellable
//! [`Effect::delay`], disarming it when the saga cancels it, and, when one
//! fires, processing it as a message on a task of its own (armed again
//! after a transient failure).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};

use chrono::{DateTime, Utc};

use super::Inner;
use crate::effect::{Effect, EffectId};
use crate::error::CodedError;
use crate::saga::instance::SagaMessage;
use crate::saga::{Saga, SagaError, SagaId};
use crate::store::ActionSink;

/// A timeout that fired, fed back by its delay effect.
#[derive(Debug, Clone)]
struct TimeoutFired {
    saga_id: SagaId,
    name: String,
    deadline: DateTime<Utc>,
    generation: u64,
}

#[derive(Default)]
pub(super) struct Timers {
    next_generation: u64,
    pub(super) armed: HashMap<(SagaId, String), Armed>,
}

pub(super) struct Armed {
    generation: u64,
    wake_at: DateTime<Utc>,
}

impl<S: Saga> Inner<S> {
    pub(super) fn lock_timers(&self) -> std::sync::MutexGuard<'_, Timers> {
        self.timers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn is_busy(&self) -> bool {
        if self.busy.load(Ordering::SeqCst) > 0 {
            return true;
        }
        let now = self.clock.now();
        self.lock_timers()
            .armed
            .values()
            .any(|armed| armed.wake_at <= now)
    }

    /// Arms the timeouts that are new or moved, disarms those that are gone.
    pub(super) fn sync_timeouts(
        this: &Arc<Self>,
        saga_id: &SagaId,
        before: &BTreeMap<String, DateTime<Utc>>,
        after: &BTreeMap<String, DateTime<Utc>>,
    ) {
        for name in before.keys() {
            if !after.contains_key(name) {
                this.disarm(saga_id, name);
            }
        }
        for (name, deadline) in after {
            if before.get(name) != Some(deadline) {
                Self::arm(this, saga_id, name, *deadline, *deadline);
            }
        }
    }

    fn effect_id(saga_id: &SagaId, name: &str) -> EffectId {
        EffectId::new(format!("saga-{}-{saga_id}/{name}", S::KIND))
    }

    /// Arms timeout `name` (due at `deadline`) to fire at `wake_at`.
    fn arm(
        this: &Arc<Self>,
        saga_id: &SagaId,
        name: &str,
        deadline: DateTime<Utc>,
        wake_at: DateTime<Utc>,
    ) {
        if !this.accepting.load(Ordering::SeqCst) {
            return;
        }
        let effect_id = Self::effect_id(saga_id, name);
        this.runner.cancel(&effect_id);
        let generation = {
            let mut timers = this.lock_timers();
            timers.next_generation += 1;
            let generation = timers.next_generation;
            timers.armed.insert(
                (saga_id.clone(), name.to_owned()),
                Armed {
                    generation,
                    wake_at,
                },
            );
            generation
        };
        let remaining = (wake_at - this.clock.now()).to_std().unwrap_or_default();
        let fired = TimeoutFired {
            saga_id: saga_id.clone(),
            name: name.to_owned(),
            deadline,
            generation,
        };
        let weak: Weak<Self> = Arc::downgrade(this);
        let sink: ActionSink<TimeoutFired> = Arc::new(move |fired| {
            if let Some(inner) = weak.upgrade() {
                Self::on_timeout(&inner, fired);
            }
        });
        this.runner.run(
            Effect::delay(remaining, fired).cancellable(effect_id),
            &this.timer_group,
            &sink,
        );
    }

    fn disarm(&self, saga_id: &SagaId, name: &str) {
        self.runner.cancel(&Self::effect_id(saga_id, name));
        self.lock_timers()
            .armed
            .remove(&(saga_id.clone(), name.to_owned()));
        self.activity.send_modify(|n| *n += 1);
    }

    /// A timeout's delay is over: handle it on a task of its own.
    fn on_timeout(this: &Arc<Self>, fired: TimeoutFired) {
        if !this.accepting.load(Ordering::SeqCst) {
            return;
        }
        this.busy.fetch_add(1, Ordering::SeqCst);
        let inner = Arc::clone(this);
        this.tasks.spawn(async move {
            let message = SagaMessage::Timeout {
                name: fired.name.clone(),
                deadline: fired.deadline,
            };
            let result = Self::process(&inner, fired.saga_id.clone(), message, None).await;
            let key = (fired.saga_id.clone(), fired.name.clone());
            let still_armed = inner
                .lock_timers()
                .armed
                .get(&key)
                .is_some_and(|armed| armed.generation == fired.generation);
            match result {
                Err(error) if still_armed && error.is_transient() => {
                    // Not recorded: try again later.
                    tracing::warn!(
                        saga = S::KIND,
                        saga_id = %fired.saga_id,
                        timeout = %fired.name,
                        %error,
                        "handling a saga timeout failed; trying again"
                    );
                    let wake_at = inner.clock.now()
                        + chrono::Duration::from_std(inner.retry_after)
                            .unwrap_or(chrono::Duration::MAX);
                    Self::arm(&inner, &fired.saga_id, &fired.name, fired.deadline, wake_at);
                }
                result => {
                    if let Err(error) = result.as_ref()
                        && !error.is_transient()
                        && !matches!(error, SagaError::Dispatch { .. })
                    {
                        tracing::error!(
                            saga = S::KIND,
                            saga_id = %fired.saga_id,
                            timeout = %fired.name,
                            %error,
                            class = %error.class(),
                            "handling a saga timeout failed and retrying cannot help; it is \
                             armed again by resume() once the cause is fixed"
                        );
                    } else if let Err(error) = result {
                        tracing::warn!(
                            saga = S::KIND,
                            saga_id = %fired.saga_id,
                            timeout = %fired.name,
                            %error,
                            "a saga timeout was recorded, but delivering its commands failed"
                        );
                    }
                    let mut timers = inner.lock_timers();
                    if timers
                        .armed
                        .get(&key)
                        .is_some_and(|armed| armed.generation == fired.generation)
                    {
                        timers.armed.remove(&key);
                    }
                }
            }
            inner.busy.fetch_sub(1, Ordering::SeqCst);
            inner.activity.send_modify(|n| *n += 1);
        });
    }
}
