//! Temporal queries, the replay debugger and saga histories on
//! PostgreSQL: `load_at` by version and by the times PostgreSQL recorded
//! (with and without snapshots) equals a fold of the stream's first events;
//! a version past the end is `CR-E0021`; the debugger steps through the
//! stored events; a saga's steps keep the event they received through the
//! JSONB round trip.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::aggregate::AsOf;
use composable_rust_core::event::decode;
use composable_rust_core::saga::{
    CommandDispatcher, DispatchError, Reaction, Routed, Saga, SagaCommand, SagaContext, SagaError,
    SagaHistory, SagaId, SagaRuntime,
};
use composable_rust_core::{
    Aggregate, AggregateRepository, CodedError, Event, EventStore, EventStoreError,
    ExpectedVersion, NewEvent, SnapshotPolicy, StoredEvent, StreamId, Upcasters,
};
use serde::{Deserialize, Serialize};

use super::support::fresh_store;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Moved {
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
}

impl Event for Moved {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Account {
    balance: i64,
    movements: Vec<i64>,
}

impl Aggregate for Account {
    const KIND: &'static str = "account";
    type Event = Moved;
    type Command = Moved;
    type Error = std::convert::Infallible;
    type Environment = ();

    fn decide(&self, command: Moved, _: &()) -> Result<Vec<Moved>, Self::Error> {
        Ok(vec![command])
    }

    fn apply(&mut self, event: &Moved) {
        let delta = match event {
            Moved::Deposited { amount } => *amount,
            Moved::Withdrawn { amount } => -amount,
        };
        self.balance += delta;
        self.movements.push(delta);
    }
}

fn command(i: i64) -> Moved {
    if i % 3 == 0 {
        Moved::Withdrawn { amount: 25 }
    } else {
        Moved::Deposited { amount: 10 * i }
    }
}

fn expected(n: u64) -> Account {
    let mut account = Account::default();
    for i in 1..=n as i64 {
        account.apply(&command(i));
    }
    account
}

const EVENTS: u64 = 10;

#[tokio::test]
async fn load_at_a_version_or_a_recorded_time_with_and_without_snapshots() {
    let store = fresh_store().await;
    for snapshots in [false, true] {
        let policy = if snapshots {
            SnapshotPolicy::every(4)
        } else {
            SnapshotPolicy::Never
        };
        let repository =
            AggregateRepository::<Account, _>::new(store.store.clone(), ()).with_snapshots(policy);
        let id = StreamId::for_aggregate(Account::KIND, u64::from(snapshots)).unwrap();
        for i in 1..=EVENTS as i64 {
            repository.execute(&id, command(i)).await.unwrap();
            // Each append is its own transaction, stamped with now(): apart
            // by a few milliseconds, the events have distinct times.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if snapshots {
            let snapshot = store.load_snapshot(&id).await.unwrap().unwrap();
            assert_eq!(snapshot.stream_version, 8);
        }
        let from_snapshot = |version: u64| (snapshots && version >= 8).then_some(8);

        for version in 0..=EVENTS {
            let loaded = repository
                .load_at(&id, AsOf::Version(version))
                .await
                .unwrap();
            assert_eq!(loaded.state, expected(version), "version {version}");
            assert_eq!(loaded.version, version);
            assert_eq!(loaded.snapshot_version, from_snapshot(version));
        }

        // As of the time PostgreSQL recorded each event, and a microsecond
        // (its precision) before it.
        let stored = store.load_stream(&id, 0).await.unwrap();
        for event in &stored {
            let version = event.stream_version;
            let at = repository
                .load_at(&id, AsOf::Time(event.recorded_at))
                .await
                .unwrap();
            assert_eq!((at.version, &at.state), (version, &expected(version)));
            assert_eq!(at.snapshot_version, from_snapshot(version));
            let just_before = event.recorded_at - chrono::Duration::microseconds(1);
            let before = repository
                .load_at(&id, AsOf::Time(just_before))
                .await
                .unwrap();
            assert_eq!(before.version, version - 1, "just before v{version}");
            assert_eq!(before.state, expected(version - 1));
            assert_eq!(before.snapshot_version, from_snapshot(version - 1));
        }

        let error = repository
            .load_at(&id, AsOf::Version(EVENTS + 5))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                EventStoreError::VersionPastEnd {
                    requested: 15,
                    current: 10,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.code().as_str(), "CR-E0021");
    }
}

#[tokio::test]
async fn the_debugger_steps_through_stored_events() {
    let store = fresh_store().await;
    let repository = AggregateRepository::<Account, _>::new(store.store.clone(), ())
        .with_snapshots(SnapshotPolicy::every(4));
    let id = StreamId::for_aggregate(Account::KIND, 7).unwrap();
    for i in 1..=EVENTS as i64 {
        repository.execute(&id, command(i)).await.unwrap();
    }
    let stored = store.load_stream(&id, 0).await.unwrap();
    let mut debugger = repository.debugger(&id, AsOf::Version(5)).await.unwrap();
    assert_eq!(debugger.state(), &expected(5));
    let step = debugger.step().unwrap();
    assert_eq!(step.version, 6);
    assert_eq!(step.recorded_at, stored[5].recorded_at);
    assert_eq!(step.payload, stored[5].payload);
    assert_eq!(
        step.diff.to_string(),
        "~ balance: 95 -> 70\n+ movements[5]: -25\n"
    );
    let hit = debugger
        .run_until(|account, _| account.balance > 200)
        .unwrap();
    assert_eq!((hit.version, debugger.state().balance), (8, 220));
    assert!(debugger.run_until(|_, _| false).is_none());
    assert_eq!(debugger.version(), 10);
}

// ---- a saga's history ------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Asked {
    Ping { id: String },
}
impl Event for Asked {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Answered {
    Ponged,
}
impl Event for Answered {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Say {
    Pong,
}

/// Answers every ping once, and ends.
struct Echo;

impl Saga for Echo {
    const KIND: &'static str = "echo";
    type State = bool;
    type Input = ();
    type Event = Answered;
    type Command = Say;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<()>>, SagaError> {
        match decode::<Asked>(event, &Upcasters::new())? {
            Some(Asked::Ping { id }) => Ok(Some(Routed::new(SagaId::new(id)?, ()))),
            None => Ok(None),
        }
    }

    fn react(&self, answered: &bool, (): (), _: &SagaContext) -> Reaction<Self> {
        if *answered {
            return Reaction::new();
        }
        Reaction::new()
            .record(Answered::Ponged)
            .send(Say::Pong)
            .complete()
    }

    fn apply(answered: &mut bool, _: &Answered) {
        *answered = true;
    }
}

#[derive(Default)]
struct Sent(Mutex<Vec<Say>>);

#[async_trait]
impl CommandDispatcher<Say> for Sent {
    async fn dispatch(&self, command: &SagaCommand<Say>) -> Result<(), DispatchError> {
        let mut sent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        sent.push(command.command.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_saga_history_names_what_it_received() {
    let store = fresh_store().await;
    let sent = Arc::new(Sent::default());
    let runtime = SagaRuntime::new(Echo, store.store.clone(), Arc::clone(&sent));
    let ping = StreamId::new("ping-1").unwrap();
    let event = NewEvent::from_event(&Asked::Ping { id: "p-1".into() }).unwrap();
    store
        .append(&ping, ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();
    let stored = store.load_stream(&ping, 0).await.unwrap();
    runtime.handle(&stored[0]).await.unwrap();

    let history = SagaHistory::load(&store.store, Echo::KIND, &SagaId::new("p-1").unwrap())
        .await
        .unwrap();
    let expected = "\
sequenceDiagram
    participant p0 as ping
    participant saga as echo p-1
    participant commands
    p0->>saga: Ping
    Note over saga: recorded Ponged
    saga->>commands: Pong
    Note over saga: completed
    commands-->>saga: delivered Pong
";
    assert_eq!(history.to_mermaid(), expected);
    assert_eq!(*sent.0.lock().unwrap(), [Say::Pong]);
    runtime.shutdown().await;
}
