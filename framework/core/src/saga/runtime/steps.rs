//! Processing one message (an event routed to a saga, or a timeout that
//! fired) for one saga instance: load the instance (replaying its stream
//! unless cached), let the saga decide, record the step in one append with
//! optimistic concurrency (reloading and deciding again when another
//! writer got there first), then flush: deliver its pending commands and
//! record their delivery. The saga's catalog entries (started, closed) go
//! in the commit of the step or delivery that implies them.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::catalog::CatalogEvent;
use super::{Handled, Inner};
use crate::event::{ExpectedVersion, NewEvent, StreamId};
use crate::event_store::{EventStore as _, EventStoreError, StreamAppend};
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
        let mut closed_in_step = false;
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
                Ok(closed) => {
                    closed_in_step = closed;
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
        if closed_in_step {
            // Ended with nothing to deliver: closed by the step's commit.
            this.evict(&saga_id);
            return Ok(handled);
        }
        let instance = guard.as_mut().expect("the instance is loaded");
        let flushed = match this.flush(instance).await {
            Ok(flushed) => flushed,
            Err(error) => {
                if !matches!(error, SagaError::Dispatch { .. }) {
                    *guard = None;
                }
                return Err(error);
            }
        };
        if !settled_before && instance.is_settled() && !flushed.closed {
            this.close(&saga_id).await?;
        }
        Ok(handled)
    }

    /// Appends `transition` to the instance's stream and applies it;
    /// returns whether the saga was closed in the catalog with it.
    ///
    /// The catalog entries the step implies go in the same commit
    /// ([`append_to_streams`](crate::EventStore::append_to_streams)): a
    /// first step lists the saga as started (so a crash cannot leave a
    /// saga that resume() does not know), and a step that ends the saga
    /// with nothing left to deliver closes it. One commit instead of two
    /// or three, and no catalog entry without its step.
    async fn record(
        this: &Arc<Self>,
        instance: &mut SagaInstance<S>,
        transition: Transition<S>,
    ) -> Result<bool, SagaError> {
        let batch = transition.to_new_events(instance.id())?;
        let first = instance.version() == 0;
        let settles = transition.outcome.is_some()
            && transition.commands.is_empty()
            && instance.pending().is_empty();
        let expected = if first {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(instance.version())
        };
        let mut catalog = Vec::new();
        if first {
            catalog.push(CatalogEvent::Started {
                saga_id: instance.id().clone(),
            });
        }
        if settles {
            catalog.push(CatalogEvent::Closed {
                saga_id: instance.id().clone(),
            });
        }
        let version =
            Self::append_with_catalog(this, instance.stream_id(), expected, batch, catalog).await?;
        if first {
            crate::metrics::saga::started(S::KIND);
        }
        let before = instance.timeouts().clone();
        let pending_before = instance.pending().len();
        instance.commit(transition, version);
        crate::metrics::saga::pending_commands(S::KIND, pending_delta(pending_before, instance));
        let saga_id = instance.id().clone();
        Self::sync_timeouts(this, &saga_id, &before, instance.timeouts());
        Ok(settles)
    }

    /// Appends `batch` to the saga's `stream`, with `catalog`'s events (if
    /// any) in the same commit; returns the saga stream's new version.
    async fn append_with_catalog(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        batch: Vec<NewEvent>,
        catalog: Vec<CatalogEvent>,
    ) -> Result<u64, SagaError> {
        if catalog.is_empty() {
            return Ok(self
                .store
                .append(stream, expected, batch)
                .await?
                .stream_version);
        }
        let catalog = catalog
            .iter()
            .map(NewEvent::from_event)
            .collect::<Result<Vec<_>, _>>()?;
        let outcomes = self
            .store
            .append_to_streams(vec![
                StreamAppend::new(stream.clone(), expected, batch),
                StreamAppend::new(self.catalog.clone(), ExpectedVersion::Any, catalog),
            ])
            .await?;
        outcomes
            .first()
            .map(|outcome| outcome.stream_version)
            .ok_or_else(|| {
                SagaError::Store(EventStoreError::Encode {
                    reason: "the store returned no outcome for the saga's stream".to_owned(),
                })
            })
    }

    /// Delivers the instance's pending commands in order, stopping at the
    /// first failure, and records the delivery of those that went out. A
    /// delivery that settles the saga (it has ended, and nothing is left
    /// to deliver) closes it in the catalog in the same commit.
    pub(super) async fn flush(&self, instance: &mut SagaInstance<S>) -> Result<Flushed, SagaError> {
        if instance.pending().is_empty() {
            return Ok(Flushed::default());
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
        let mut closed = false;
        if !delivered.is_empty() {
            let record = dispatched_record::<S::Command>(&delivered, instance.id())?;
            closed = instance.outcome().is_some() && delivered.len() == instance.pending().len();
            let catalog = if closed {
                vec![CatalogEvent::Closed {
                    saga_id: instance.id().clone(),
                }]
            } else {
                Vec::new()
            };
            let version = self
                .append_with_catalog(
                    instance.stream_id(),
                    ExpectedVersion::Exact(instance.version()),
                    vec![record],
                    catalog,
                )
                .await?;
            instance.mark_dispatched(&delivered, version);
            crate::metrics::saga::pending_commands(S::KIND, -signed(delivered.len()));
            if closed {
                self.evict(instance.id());
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(Flushed {
                delivered: delivered.len(),
                closed,
            }),
        }
    }
}

/// What [`Inner::flush`] did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Flushed {
    /// How many commands went out.
    pub(super) delivered: usize,
    /// Whether the delivery settled the saga, which was closed in the
    /// catalog in the same commit.
    pub(super) closed: bool,
}

/// How many commands `instance` has pending now, minus `before`.
fn pending_delta<S: Saga>(before: usize, instance: &SagaInstance<S>) -> isize {
    signed(instance.pending().len()) - signed(before)
}

fn signed(count: usize) -> isize {
    isize::try_from(count).unwrap_or(isize::MAX)
}
