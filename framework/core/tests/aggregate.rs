//! The aggregate repository: load, decide, append, apply; snapshots;
//! upcasting; concurrency conflicts and retries; the append effect.

use std::sync::Arc;

use composable_rust_core::aggregate::{RepositoryError, append_events};
use composable_rust_core::event::decode_all;
use composable_rust_core::{
    Aggregate, AggregateRepository, Effect, Effects, Event, EventStore, EventStoreError,
    ExpectedVersion, InMemoryEventStore, NewEvent, Reducer, SnapshotPolicy, Store, StreamId,
    Upcasters,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Account {
    open: bool,
    balance: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AccountEvent {
    Opened,
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
}

impl Event for AccountEvent {
    fn schema_version(event_type: &str) -> u32 {
        if event_type == "Deposited" { 2 } else { 1 }
    }
}

#[derive(Debug, Clone)]
enum Command {
    Open,
    Deposit(i64),
    Withdraw(i64),
    Nothing,
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum Refused {
    #[error("the account is closed")]
    Closed,
    #[error("insufficient funds")]
    InsufficientFunds,
}

impl Aggregate for Account {
    const KIND: &'static str = "account";
    type Event = AccountEvent;
    type Command = Command;
    type Error = Refused;
    type Environment = ();

    fn decide(&self, command: Command, _: &()) -> Result<Vec<AccountEvent>, Refused> {
        match command {
            Command::Open => Ok(vec![AccountEvent::Opened]),
            _ if !self.open => Err(Refused::Closed),
            Command::Deposit(amount) => Ok(vec![AccountEvent::Deposited { amount }]),
            Command::Withdraw(amount) if amount > self.balance => Err(Refused::InsufficientFunds),
            Command::Withdraw(amount) => Ok(vec![AccountEvent::Withdrawn { amount }]),
            Command::Nothing => Ok(vec![]),
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened => self.open = true,
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

fn repository(store: &InMemoryEventStore) -> AggregateRepository<Account, InMemoryEventStore> {
    AggregateRepository::new(store.clone(), ())
}

#[tokio::test]
async fn execute_appends_and_load_replays() {
    let store = InMemoryEventStore::new();
    let repo = repository(&store);
    let id = repo.stream_id(1).unwrap();
    assert_eq!(id.as_str(), "account-1");

    repo.execute(&id, Command::Open).await.unwrap();
    repo.execute(&id, Command::Deposit(100)).await.unwrap();
    let executed = repo.execute(&id, Command::Withdraw(30)).await.unwrap();
    assert_eq!(executed.events, [AccountEvent::Withdrawn { amount: 30 }]);
    assert_eq!(executed.version, 3);
    assert_eq!(executed.state.balance, 70);
    assert!(executed.position.is_some());

    let loaded = repo.load(&id).await.unwrap();
    assert_eq!(loaded.state, executed.state);
    assert_eq!(
        (
            loaded.version,
            loaded.events_replayed,
            loaded.snapshot_version
        ),
        (3, 3, None)
    );
}

#[tokio::test]
async fn a_refused_command_writes_nothing() {
    let store = InMemoryEventStore::new();
    let repo = repository(&store);
    let id = repo.stream_id(1).unwrap();
    let error = repo.execute(&id, Command::Deposit(5)).await.unwrap_err();
    assert!(matches!(error, RepositoryError::Rejected(Refused::Closed)));
    repo.execute(&id, Command::Open).await.unwrap();
    let error = repo.execute(&id, Command::Withdraw(1)).await.unwrap_err();
    assert!(matches!(
        error,
        RepositoryError::Rejected(Refused::InsufficientFunds)
    ));
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn a_command_without_events_appends_nothing() {
    let store = InMemoryEventStore::new();
    let repo = repository(&store);
    let id = repo.stream_id(1).unwrap();
    repo.execute(&id, Command::Open).await.unwrap();
    let executed = repo.execute(&id, Command::Nothing).await.unwrap();
    assert!(executed.events.is_empty() && executed.position.is_none());
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn snapshots_give_the_same_state_as_a_full_replay() {
    let store = InMemoryEventStore::new();
    let repo = repository(&store).with_snapshots(SnapshotPolicy::every(10));
    let id = repo.stream_id(7).unwrap();
    repo.execute(&id, Command::Open).await.unwrap();
    for amount in 1..=24 {
        repo.execute(&id, Command::Deposit(amount)).await.unwrap();
    }
    let loaded = repo.load(&id).await.unwrap();
    assert_eq!(loaded.snapshot_version, Some(20));
    assert_eq!(loaded.events_replayed, 5);
    assert_eq!(loaded.version, 25);

    let mut replayed = Account::default();
    let stored = store.load_stream(&id, 0).await.unwrap();
    for event in decode_all::<AccountEvent>(&stored, &Upcasters::new()).unwrap() {
        replayed.apply(&event);
    }
    assert_eq!(loaded.state, replayed);
    assert_eq!(replayed.balance, (1..=24).sum::<i64>());
}

#[tokio::test]
async fn a_snapshot_of_another_shape_is_ignored() {
    let store = InMemoryEventStore::new();
    let repo = repository(&store).with_snapshots(SnapshotPolicy::every(2));
    let id = repo.stream_id(3).unwrap();
    repo.execute(&id, Command::Open).await.unwrap();
    repo.execute(&id, Command::Deposit(10)).await.unwrap();
    let mut snapshot = store.load_snapshot(&id).await.unwrap().unwrap();
    snapshot.state = json!({ "shape": "from an older release" });
    store.save_snapshot(&snapshot).await.unwrap();

    let loaded = repo.load(&id).await.unwrap();
    assert_eq!(
        loaded.snapshot_version, None,
        "a snapshot that does not deserialize must be ignored"
    );
    assert_eq!(loaded.state.balance, 10);
}

#[tokio::test]
async fn old_events_are_upcast_on_load() {
    let store = InMemoryEventStore::new();
    let id = StreamId::new("account-9").unwrap();
    let opened = NewEvent::from_event(&AccountEvent::Opened).unwrap();
    let mut v1 = NewEvent::from_event(&AccountEvent::Deposited { amount: 0 }).unwrap();
    v1.schema_version = 1;
    v1.payload = json!({ "cents": 250 });
    store
        .append(&id, ExpectedVersion::NoStream, vec![opened, v1])
        .await
        .unwrap();

    let without = repository(&store).load(&id).await.unwrap_err();
    assert!(matches!(
        without,
        EventStoreError::MissingUpcaster {
            stored_version: 1,
            current_version: 2,
            ..
        }
    ));

    let upcasters = Upcasters::new().migrate("Deposited", 1, |payload| {
        let cents = payload["cents"].as_i64().ok_or("cents must be a number")?;
        Ok(json!({ "amount": cents }))
    });
    let loaded = repository(&store)
        .with_upcasters(upcasters)
        .load(&id)
        .await
        .unwrap();
    assert_eq!(loaded.state.balance, 250);
}

#[tokio::test]
async fn a_stale_writer_gets_a_conflict_and_a_retry_decides_again() {
    let store = InMemoryEventStore::new();
    let repo = repository(&store);
    let id = repo.stream_id(5).unwrap();
    repo.execute(&id, Command::Open).await.unwrap();
    repo.execute(&id, Command::Deposit(100)).await.unwrap();

    // A second writer appends behind our back between our load and append.
    let ours = repo.load(&id).await.unwrap();
    repo.execute(&id, Command::Withdraw(80)).await.unwrap();
    let stale = store
        .append(
            &id,
            ExpectedVersion::Exact(ours.version),
            vec![NewEvent::from_event(&AccountEvent::Withdrawn { amount: 80 }).unwrap()],
        )
        .await
        .unwrap_err();
    assert!(matches!(
        stale,
        EventStoreError::WrongExpectedVersion { actual: 3, .. }
    ));

    // Retrying re-decides on fresh state: the second withdrawal is refused.
    let retried = repo
        .execute_with_retry(&id, 3, || Command::Withdraw(80))
        .await
        .unwrap_err();
    assert!(matches!(
        retried,
        RepositoryError::Rejected(Refused::InsufficientFunds)
    ));
    assert_eq!(repo.load(&id).await.unwrap().state.balance, 20);
}

#[tokio::test]
async fn concurrent_retries_all_land_exactly_once() {
    let store = InMemoryEventStore::new();
    let repo = Arc::new(repository(&store));
    let id = repo.stream_id(6).unwrap();
    repo.execute(&id, Command::Open).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (repo, id) = (Arc::clone(&repo), id.clone());
            tokio::spawn(async move {
                repo.execute_with_retry(&id, 20, || Command::Deposit(1))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let loaded = repo.load(&id).await.unwrap();
    assert_eq!((loaded.state.balance, loaded.version), (8, 9));
}

/// A reducer that persists decided events through the append effect.
struct Teller {
    store: InMemoryEventStore,
}

#[derive(Debug, Clone, PartialEq)]
enum TellerAction {
    Deposit(i64),
    Saved { version: u64 },
    Failed(String),
}

impl Reducer for Teller {
    type State = (Account, u64);
    type Action = TellerAction;
    type Environment = ();

    fn reduce(
        &self,
        (account, version): &mut (Account, u64),
        action: TellerAction,
        _: &(),
    ) -> Effects<TellerAction> {
        match action {
            TellerAction::Deposit(amount) => {
                let event = AccountEvent::Deposited { amount };
                account.apply(&event);
                vec![append_events(
                    self.store.clone(),
                    StreamId::new("account-teller").unwrap(),
                    ExpectedVersion::Exact(*version),
                    vec![event],
                    |result| match result {
                        Ok(outcome) => TellerAction::Saved {
                            version: outcome.stream_version,
                        },
                        Err(error) => TellerAction::Failed(error.to_string()),
                    },
                )]
            }
            TellerAction::Saved { version: saved } => {
                *version = saved;
                vec![Effect::none()]
            }
            TellerAction::Failed(_) => Effects::new(),
        }
    }
}

#[tokio::test]
async fn a_reducer_persists_events_with_the_append_effect() {
    let store = InMemoryEventStore::new();
    let teller = Store::new(
        (
            Account {
                open: true,
                balance: 0,
            },
            0,
        ),
        Teller {
            store: store.clone(),
        },
        (),
    );
    teller.send(TellerAction::Deposit(5)).await.unwrap();
    teller.send(TellerAction::Deposit(7)).await.unwrap();
    assert_eq!(
        teller.state(|(account, version)| (account.balance, *version)),
        (12, 2)
    );
    assert_eq!(store.len(), 2);
}
