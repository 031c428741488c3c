//! Changing two aggregates in one commit: a transfer between two wallets
//! of one owner, written with `EventStore::append_to_streams`, so both
//! changes are stored or neither.

use composable_rust::aggregate::RepositoryError;
use composable_rust::event_store::StreamAppend;
use composable_rust::prelude::*;
use composable_rust::{AggregateRepository, EventStoreError, ExpectedVersion, NewEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum PurseEvent {
    Credited { cents: u64 },
    Debited { cents: u64 },
}

#[derive(Debug, Clone, Copy)]
pub enum PurseCommand {
    Credit(u64),
    Debit(u64),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("only {balance} cents left")]
pub struct Insufficient {
    pub balance: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purse {
    pub balance: u64,
}

impl Aggregate for Purse {
    const KIND: &'static str = "purse";
    type Event = PurseEvent;
    type Command = PurseCommand;
    type Error = Insufficient;
    type Environment = ();

    fn decide(&self, command: PurseCommand, _: &()) -> Result<Vec<PurseEvent>, Insufficient> {
        match command {
            PurseCommand::Credit(cents) => Ok(vec![PurseEvent::Credited { cents }]),
            PurseCommand::Debit(cents) if cents > self.balance => Err(Insufficient {
                balance: self.balance,
            }),
            PurseCommand::Debit(cents) => Ok(vec![PurseEvent::Debited { cents }]),
        }
    }

    fn apply(&mut self, event: &PurseEvent) {
        match event {
            PurseEvent::Credited { cents } => self.balance += cents,
            PurseEvent::Debited { cents } => self.balance -= cents,
        }
    }
}

// ANCHOR: transfer
/// Moves `cents` from purse `from` to purse `to`: both purses are loaded,
/// each decides its own change, and both changes are appended in one
/// commit, each expecting the version it was decided on. If either purse
/// changed meanwhile, nothing is written and the conflict names it.
pub async fn transfer<S: EventStore>(
    purses: &AggregateRepository<Purse, S>,
    from: &str,
    to: &str,
    cents: u64,
) -> Result<(), RepositoryError<Insufficient>> {
    let (from, to) = (purses.stream_id(from)?, purses.stream_id(to)?);
    let source = purses.load(&from).await?;
    let target = purses.load(&to).await?;
    let debited = source
        .state
        .decide(PurseCommand::Debit(cents), &())
        .map_err(RepositoryError::Rejected)?;
    let credited = target
        .state
        .decide(PurseCommand::Credit(cents), &())
        .map_err(RepositoryError::Rejected)?;
    purses
        .store()
        .append_to_streams(vec![
            StreamAppend::new(from, expected(source.version), new_events(&debited)?),
            StreamAppend::new(to, expected(target.version), new_events(&credited)?),
        ])
        .await?;
    Ok(())
}

/// The version a decision was made on, as an append expects it.
fn expected(version: u64) -> ExpectedVersion {
    match version {
        0 => ExpectedVersion::NoStream,
        version => ExpectedVersion::Exact(version),
    }
}

fn new_events(events: &[PurseEvent]) -> Result<Vec<NewEvent>, EventStoreError> {
    events.iter().map(NewEvent::from_event).collect()
}
// ANCHOR_END: transfer

// ANCHOR: test
#[cfg(test)]
mod tests {
    use composable_rust::{InMemoryEventStore, Position};

    use super::*;

    /// Purses on a fresh store, with 100 cents in "savings".
    async fn purses() -> AggregateRepository<Purse, InMemoryEventStore> {
        let purses = AggregateRepository::new(InMemoryEventStore::new(), ());
        let savings = purses.stream_id("savings").unwrap();
        purses
            .execute(&savings, PurseCommand::Credit(100))
            .await
            .unwrap();
        purses
    }

    async fn balance(purses: &AggregateRepository<Purse, InMemoryEventStore>, id: &str) -> u64 {
        let stream = purses.stream_id(id).unwrap();
        purses.load(&stream).await.unwrap().state.balance
    }

    #[tokio::test]
    async fn a_transfer_writes_both_purses_in_one_commit() {
        let purses = purses().await;
        transfer(&purses, "savings", "holiday", 30).await.unwrap();
        assert_eq!(balance(&purses, "savings").await, 70);
        assert_eq!(balance(&purses, "holiday").await, 30);
        let events = purses.store().read_all(Position::START, 10).await.unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1].position.commit, events[2].position.commit);
    }

    #[tokio::test]
    async fn a_refusal_or_a_conflict_writes_neither_purse() {
        let purses = purses().await;
        let error = transfer(&purses, "savings", "holiday", 500)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            RepositoryError::Rejected(Insufficient { balance: 100 })
        ));

        // Another writer debits the source after this transfer loaded it:
        // the commit is refused whole, and the target is not credited.
        let (savings, holiday) = (
            purses.stream_id("savings").unwrap(),
            purses.stream_id("holiday").unwrap(),
        );
        let source = purses.load(&savings).await.unwrap();
        purses
            .execute(&savings, PurseCommand::Debit(90))
            .await
            .unwrap();
        let late = purses
            .store()
            .append_to_streams(vec![
                StreamAppend::new(
                    savings.clone(),
                    expected(source.version),
                    new_events(&[PurseEvent::Debited { cents: 50 }]).unwrap(),
                ),
                StreamAppend::new(
                    holiday,
                    ExpectedVersion::NoStream,
                    new_events(&[PurseEvent::Credited { cents: 50 }]).unwrap(),
                ),
            ])
            .await
            .unwrap_err();
        assert!(
            matches!(&late, EventStoreError::WrongExpectedVersion { stream_id, .. } if stream_id == savings.as_str()),
            "{late}"
        );
        assert_eq!(balance(&purses, "savings").await, 10);
        assert_eq!(balance(&purses, "holiday").await, 0);
    }
}
// ANCHOR_END: test
