//! Processing one message (an event routed to a saga, or a timeout that
//! fired) for one saga instance: load the instance (replaying its stream
//! unless cached), let the saga decide, record the step in one append with
//! optimistic concurrency (reloading and deciding again when another
//! writer got there first), then flush: deliver its pending commands and
//! record their delivery.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::catalog::CatalogEvent;
use super::{Handled, Inner};
use crate::event::ExpectedVersion;
use crate::event_store::{EventStore as _, EventStoreError};
use crate::saga::instance::{
    Cause, Decision, Received, SagaInstance, SagaMessage, Transition, dispatched_record,
    saga_stream_id,
};
use crate::saga::{Saga, SagaError, SagaId};

impl<S: Saga> Inner<S> {
    pub(super) async fn load(&self, saga_id: &SagaId) -> Result<SagaInstance<S>, SagaError> {
        let stream_id = saga_stream_id::<S>(saga_id)?;
        let stored = self.store.load_stream(&stream_id, 0).await?;
        SagaInstance::replay(saga_id.clone(), &stored, &self.upcasters)
    }

    /// Loads `saga_id` into `guard` if it is not there, arming its timeouts.
    pub(super) async fn ensure_loaded<'g>(
        this: &Arc<Self>,
        saga_id: &SagaId,
        guard: &'g mut Option<SagaInstance<S>>,
    ) -> Result<&'g mut SagaInstance<S>, SagaError> {
        if guard.is_none() {
            let instance = this.load(saga_id).await?;
            Self::sync_timeouts(this, saga_id, &BTreeMap::new(), instance.timeouts());
            *guard = Some(instance);
        }
        Ok(guard.as_mut().expect("loaded above"))
    }

    /// Handles `message` for `saga_id`; `received` names the stored event
    /// an input came from, recorded with the step for the saga's history.
    pub(super) async fn process(
        this: &Arc<Self>,
        saga_id: SagaId,
        message: SagaMessage<S::Input>,
        received: Option<Received>,
    ) -> Result<Handled, SagaError> {
        let slot = this.slot(&saga_id);
        let mut guard = slot.lock().await;
        let mut attempt = 0;
        let mut settled_before;
        let handled = loop {
            attempt += 1;
            let instance = Self::ensure_loaded(this, &saga_id, &mut guard).await?;
            settled_before = instance.is_settled();
            let decision = instance.decide(&this.saga, message.clone(), this.clock.now());
            let transition = match decision {
                Decision::Duplicate => break Handled::Duplicate(saga_id.clone()),
                Decision::Ended => break Handled::Ended(saga_id.clone()),
                Decision::NoReaction | Decision::StaleTimeout => {
                    break Handled::NoReaction(saga_id.clone());
                }
                Decision::Step(mut transition) => {
                    if let Cause::Input { received: slot, .. } = &mut transition.cause {
                        slot.clone_from(&received);
                    }
                    transition
                }
            };
            let outcome = transition.outcome;
            match Self::record(this, instance, transition).await {
                Ok(()) => {
                    if let Some(outcome) = outcome {
                        crate::metrics::saga::ended(S::KIND, outcome);
                    }
                    if matches!(message, SagaMessage::Timeout { .. }) {
                        crate::metrics::saga::timed_out(S::KIND);
                    }
                    tracing::debug!(saga = S::KIND, %saga_id, ?outcome, "saga step recorded");
                    break Handled::Stepped {
                        saga_id: saga_id.clone(),
                        outcome,
                    };
                }
                Err(SagaError::Store(EventStoreError::WrongExpectedVersion { .. })) => {
                    // Another writer got there first: reload and decide again.
                    *guard = None;
                    if attempt >= this.conflict_attempts {
                        return Err(SagaError::Conflict {
                            saga_id,
                            attempts: attempt,
                        });
                    }
                }
                Err(error) => {
                    *guard = None;
                    return Err(error);
                }
            }
        };
        let instance = guard.as_mut().expect("the instance is loaded");
        if let Err(error) = this.flush(instance).await {
            if !matches!(error, SagaError::Dispatch { .. }) {
                *guard = None;
            }
            return Err(error);
        }
        if !settled_before && instance.is_settled() {
            this.close(&saga_id).await?;
        }
        Ok(handled)
    }

    /// Appends `transition` to the instance's stream and applies it.
    async fn record(
        this: &Arc<Self>,
        instance: &mut SagaInstance<S>,
        transition: Transition<S>,
    ) -> Result<(), SagaError> {
        let batch = transition.to_new_events(instance.id())?;
        let expected = if instance.version() == 0 {
            // Listed in the catalog first, so a crash right after the
            // saga's first append cannot hide it from resume().
            this.catalog_append(CatalogEvent::Started {
                saga_id: instance.id().clone(),
            })
            .await?;
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(instance.version())
        };
        let appended = this
            .store
            .append(instance.stream_id(), expected, batch)
            .await?;
        if expected == ExpectedVersion::NoStream {
            crate::metrics::saga::started(S::KIND);
        }
        let before = instance.timeouts().clone();
        let pending_before = instance.pending().len();
        instance.commit(transition, appended.stream_version);
        crate::metrics::saga::pending_commands(S::KIND, pending_delta(pending_before, instance));
        let saga_id = instance.id().clone();
        Self::sync_timeouts(this, &saga_id, &before, instance.timeouts());
        Ok(())
    }

    /// Delivers the instance's pending commands in order, stopping at the
    /// first failure, and records the delivery of those that went out.
    pub(super) async fn flush(&self, instance: &mut SagaInstance<S>) -> Result<usize, SagaError> {
        if instance.pending().is_empty() {
            return Ok(0);
        }
        let mut delivered = Vec::new();
        let mut failure = None;
        for command in instance.pending() {
            match self.dispatcher.dispatch(command).await {
                Ok(()) => delivered.push(command.id.clone()),
                Err(source) => {
                    tracing::warn!(
                        saga = S::KIND,
                        saga_id = %command.saga_id,
                        command_id = %command.id,
                        error = %source,
                        "delivering a saga command failed; it stays pending"
                    );
                    failure = Some(SagaError::Dispatch {
                        saga_id: command.saga_id.clone(),
                        command_id: command.id.clone(),
                        source,
                    });
                    break;
                }
            }
        }
        if !delivered.is_empty() {
            let record = dispatched_record::<S::Command>(&delivered, instance.id())?;
            let appended = self
                .store
                .append(
                    instance.stream_id(),
                    ExpectedVersion::Exact(instance.version()),
                    vec![record],
                )
                .await?;
            instance.mark_dispatched(&delivered, appended.stream_version);
            crate::metrics::saga::pending_commands(S::KIND, -signed(delivered.len()));
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(delivered.len()),
        }
    }
}

/// How many commands `instance` has pending now, minus `before`.
fn pending_delta<S: Saga>(before: usize, instance: &SagaInstance<S>) -> isize {
    signed(instance.pending().len()) - signed(before)
}

fn signed(count: usize) -> isize {
    isize::try_from(count).unwrap_or(isize::MAX)
}
