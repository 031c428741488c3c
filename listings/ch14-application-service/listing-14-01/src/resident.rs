//! An account whose state lives in the store: the reducer decides with the
//! aggregate's own `decide`, an effect appends the events
//! (`append_events`), and the reducer applies them once the event store
//! has accepted them.

use std::sync::Arc;

use composable_rust::ExpectedVersion;
use composable_rust::aggregate::append_events;
use composable_rust::prelude::*;

use crate::account::{Account, AccountCommand, AccountEvent};
use crate::failure::Failure;

// ANCHOR: resident
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResidentState {
    /// The account as of `version`: only events the event store accepted.
    pub account: Account,
    pub version: u64,
    pub last_failure: Option<Failure>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResidentAction {
    Command(AccountCommand),
    /// Fed back: the event store accepted `events`; the stream is at `version`.
    Appended {
        events: Vec<AccountEvent>,
        version: u64,
    },
    /// Fed back: the append failed; nothing was written.
    Failed(Failure),
}

#[derive(Debug)]
pub struct ResidentEnvironment {
    pub events: Arc<dyn EventStore>,
    pub stream: StreamId,
}

#[derive(Debug)]
pub struct ResidentAccount;

impl Reducer for ResidentAccount {
    type State = ResidentState;
    type Action = ResidentAction;
    type Environment = ResidentEnvironment;

    fn reduce(
        &self,
        state: &mut ResidentState,
        action: ResidentAction,
        env: &ResidentEnvironment,
    ) -> Effects<ResidentAction> {
        match action {
            // Deciding is pure, so it happens right here, in the reducer.
            ResidentAction::Command(command) => match state.account.decide(command, &()) {
                Err(reason) => {
                    state.last_failure = Some(Failure::Refused(reason));
                    Effects::new()
                }
                Ok(events) if events.is_empty() => Effects::new(),
                Ok(events) => {
                    let expected = match state.version {
                        0 => ExpectedVersion::NoStream,
                        version => ExpectedVersion::Exact(version),
                    };
                    let decided = events.clone();
                    // Storing is I/O, so it is an effect.
                    vec![append_events(
                        Arc::clone(&env.events),
                        env.stream.clone(),
                        expected,
                        events,
                        move |result| match result {
                            Ok(outcome) => ResidentAction::Appended {
                                events: decided,
                                version: outcome.stream_version,
                            },
                            Err(error) => ResidentAction::Failed(Failure::from_error(&error)),
                        },
                    )]
                }
            },
            // Applying waits until the events are stored.
            ResidentAction::Appended { events, version } => {
                for event in &events {
                    state.account.apply(event);
                }
                state.version = version;
                state.last_failure = None;
                Effects::new()
            }
            ResidentAction::Failed(failure) => {
                state.last_failure = Some(failure);
                Effects::new()
            }
        }
    }
}
// ANCHOR_END: resident
