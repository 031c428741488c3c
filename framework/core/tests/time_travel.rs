//! Temporal queries and the replay debugger on the in-memory store:
//! `load_at` by version and by time, with and without snapshots, equals a
//! fold of the stream's first events; a version past the end is
//! `CR-E0021`; the debugger steps, diffs, stops at a condition and prints.
//! (The same on PostgreSQL: `framework/postgres/tests/time_travel.rs`.)

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use composable_rust_core::aggregate::{AsOf, Change, StateCondition};
use composable_rust_core::{
    Aggregate, AggregateRepository, CodedError, Event, EventStore, EventStoreError,
    InMemoryEventStore, SnapshotPolicy, StreamId, TestClock,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Moved {
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
}

impl Event for Moved {}

/// A balance and every movement, so a missing or doubled event shows.
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

/// The i-th command of the test stream (1-based): deposits of 10, 20,
/// ..., with every third a withdrawal of 25.
fn command(i: i64) -> Moved {
    if i % 3 == 0 {
        Moved::Withdrawn { amount: 25 }
    } else {
        Moved::Deposited { amount: 10 * i }
    }
}

/// The state after the first `n` commands, folded by hand.
fn expected(n: u64) -> Account {
    let mut account = Account::default();
    for i in 1..=n as i64 {
        account.apply(&command(i));
    }
    account
}

const EVENTS: u64 = 10;

/// A stream of ten events recorded a minute apart on a test clock,
/// starting at 2025-01-01T00:01:00Z; with `snapshots`, one snapshot every
/// four events (the store keeps the latest: at version 8).
async fn stream(
    snapshots: bool,
) -> (
    AggregateRepository<Account, InMemoryEventStore>,
    StreamId,
    TestClock,
) {
    let clock = TestClock::new();
    let store = InMemoryEventStore::new().with_clock(Arc::new(clock.clone()));
    let policy = if snapshots {
        SnapshotPolicy::every(4)
    } else {
        SnapshotPolicy::Never
    };
    let repository = AggregateRepository::<Account, _>::new(store, ())
        .with_snapshots(policy)
        .with_clock(Arc::new(clock.clone()));
    let id = StreamId::for_aggregate(Account::KIND, 1).unwrap();
    for i in 1..=EVENTS as i64 {
        clock.advance(Duration::from_secs(60));
        repository.execute(&id, command(i)).await.unwrap();
    }
    (repository, id, clock)
}

fn minute(n: i64) -> DateTime<Utc> {
    "2025-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(n)
}

#[tokio::test]
async fn every_version_loads_the_fold_of_the_events_up_to_it() {
    for snapshots in [false, true] {
        let (repository, id, _) = stream(snapshots).await;
        for version in 0..=EVENTS {
            let loaded = repository
                .load_at(&id, AsOf::Version(version))
                .await
                .unwrap();
            assert_eq!(loaded.state, expected(version), "version {version}");
            assert_eq!(loaded.version, version);
            // The snapshot at 8 stands in for events 1-8 only when the
            // target is not before it.
            let from_snapshot = snapshots && version >= 8;
            assert_eq!(
                loaded.snapshot_version,
                from_snapshot.then_some(8),
                "version {version}, snapshots {snapshots}"
            );
            let replayed = if from_snapshot { version - 8 } else { version };
            assert_eq!(loaded.events_replayed as u64, replayed);
        }
        let latest = repository.load(&id).await.unwrap();
        let at_end = repository
            .load_at(&id, AsOf::Version(EVENTS))
            .await
            .unwrap();
        assert_eq!(
            (at_end.state, at_end.version),
            (latest.state, latest.version)
        );
    }
}

#[tokio::test]
async fn a_time_loads_the_events_recorded_by_then() {
    for snapshots in [false, true] {
        let (repository, id, _) = stream(snapshots).await;
        // Event i was recorded at minute i.
        for (time, version) in [
            (minute(0), 0),
            (minute(1) - chrono::Duration::milliseconds(1), 0),
            (minute(1), 1),
            (minute(3) + chrono::Duration::seconds(30), 3),
            (minute(7), 7),
            (minute(8), 8),
            (minute(9) + chrono::Duration::seconds(59), 9),
            (minute(60), 10),
        ] {
            let loaded = repository.load_at(&id, AsOf::Time(time)).await.unwrap();
            assert_eq!(loaded.version, version, "at {time}");
            assert_eq!(loaded.state, expected(version), "at {time}");
            // The snapshot (of version 8, recorded at minute 8) only when
            // the time is not before its last event.
            let from_snapshot = snapshots && time >= minute(8);
            assert_eq!(loaded.snapshot_version, from_snapshot.then_some(8));
        }
    }
}

#[tokio::test]
async fn a_version_past_the_end_is_a_coded_error() {
    let (repository, id, _) = stream(true).await;
    let error = repository
        .load_at(&id, AsOf::Version(EVENTS + 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            EventStoreError::VersionPastEnd {
                requested: 11,
                current: 10,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.code().as_str(), "CR-E0021");
    assert!(!error.is_transient());
    let message = error.to_string();
    assert!(
        message.contains("`account-1` has no version 11: it ends at version 10"),
        "{message}"
    );
    // A stream that does not exist is at version 0: only 0 loads.
    let nobody = StreamId::for_aggregate(Account::KIND, 404).unwrap();
    let empty = repository.load_at(&nobody, AsOf::Version(0)).await.unwrap();
    assert_eq!((empty.state, empty.version), (Account::default(), 0));
    let error = repository
        .load_at(&nobody, AsOf::Version(1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, EventStoreError::VersionPastEnd { current: 0, .. }),
        "{error:?}"
    );
    assert!(
        repository
            .debugger(&nobody, AsOf::Version(3))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_debugger_steps_from_a_version_with_a_diff_per_event() {
    let (repository, id, _) = stream(true).await;
    let mut debugger = repository.debugger(&id, AsOf::Version(2)).await.unwrap();
    assert_eq!(debugger.version(), 2);
    assert_eq!(debugger.state(), &expected(2));
    assert_eq!(debugger.remaining(), 8);

    let step = debugger.step().unwrap();
    assert_eq!(step.version, 3);
    assert_eq!(step.event_type, "Withdrawn");
    assert_eq!(step.event, Moved::Withdrawn { amount: 25 });
    assert_eq!(step.payload, serde_json::json!({ "amount": 25 }));
    assert_eq!(step.recorded_at, minute(3));
    assert_eq!(step.before, serde_json::to_value(expected(2)).unwrap());
    assert_eq!(step.after, serde_json::to_value(expected(3)).unwrap());
    assert_eq!(
        step.diff.changes(),
        [
            Change::Changed {
                path: "balance".into(),
                before: 30.into(),
                after: 5.into(),
            },
            Change::Added {
                path: "movements[2]".into(),
                value: (-25).into(),
            },
        ]
    );
    assert_eq!(debugger.state(), &expected(3));

    // Every later step agrees with a fold of the stream.
    let mut version = 3;
    while let Some(step) = debugger.step() {
        version += 1;
        assert_eq!(step.version, version);
        assert_eq!(step.after, serde_json::to_value(expected(version)).unwrap());
    }
    assert_eq!(
        (version, debugger.version(), debugger.remaining()),
        (10, 10, 0)
    );
    assert!(debugger.step().is_none());
}

#[tokio::test]
async fn run_until_stops_at_the_first_event_after_which_the_condition_holds() {
    let (repository, id, _) = stream(false).await;
    // Balances: 10, 30, 5, 45, 95, 70, 140, 220, 195, 295.
    let mut debugger = repository.debugger(&id, AsOf::Version(0)).await.unwrap();
    let hit = debugger
        .run_until(|account, _| account.balance > 100)
        .unwrap();
    assert_eq!(hit.version, 7);
    assert_eq!(debugger.state().balance, 140);
    // Again: the next event after which it holds.
    let next = debugger
        .run_until(|account, _| account.balance > 100)
        .unwrap();
    assert_eq!(next.version, 8);
    // A condition on the event: the next withdrawal.
    let withdrawal = debugger
        .run_until(|_, event| matches!(event, Moved::Withdrawn { .. }))
        .unwrap();
    assert_eq!(withdrawal.version, 9);
    // Never again: the debugger runs to the end.
    assert!(
        debugger
            .run_until(|account, _| account.balance < 0)
            .is_none()
    );
    assert_eq!(debugger.version(), 10);

    // Started at a time: after the events recorded by then.
    let debugger = repository
        .debugger(&id, AsOf::Time(minute(4) + chrono::Duration::seconds(1)))
        .await
        .unwrap();
    assert_eq!((debugger.version(), debugger.remaining()), (4, 6));
}

#[tokio::test]
async fn the_debugger_prints_each_step_and_where_it_stopped() {
    let (repository, id, _) = stream(false).await;
    let mut debugger = repository.debugger(&id, AsOf::Version(4)).await.unwrap();
    let mut out = Vec::new();
    debugger.print_state(&mut out).unwrap();
    let stopped = debugger
        .print_until(&mut out, |account, _| account.balance < 80)
        .unwrap();
    assert_eq!(stopped, Some(6));
    let tail = debugger.print_until(&mut out, |_, _| false).unwrap();
    assert_eq!(tail, None);
    let printed = String::from_utf8(out).unwrap();
    let expected = "\
account-1 at version 4:
    {
      \"balance\": 45,
      \"movements\": [
        10,
        20,
        -25,
        40
      ]
    }
v5 2025-01-01 00:05:00.000 UTC Deposited {\"amount\":50}
    ~ balance: 45 -> 95
    + movements[4]: 50
v6 2025-01-01 00:06:00.000 UTC Withdrawn {\"amount\":25}
    ~ balance: 95 -> 70
    + movements[5]: -25
stopped at version 6: the condition holds
v7 2025-01-01 00:07:00.000 UTC Deposited {\"amount\":70}
    ~ balance: 70 -> 140
    + movements[6]: 70
v8 2025-01-01 00:08:00.000 UTC Deposited {\"amount\":80}
    ~ balance: 140 -> 220
    + movements[7]: 80
v9 2025-01-01 00:09:00.000 UTC Withdrawn {\"amount\":25}
    ~ balance: 220 -> 195
    + movements[8]: -25
v10 2025-01-01 00:10:00.000 UTC Deposited {\"amount\":100}
    ~ balance: 195 -> 295
    + movements[9]: 100
end of account-1 at version 10
";
    assert_eq!(printed, expected);
}

#[tokio::test]
async fn a_snapshot_that_includes_an_event_after_the_time_is_not_used() {
    // The snapshot includes event 8, recorded at minute 8: a millisecond
    // before, the state is version 7's, replayed from the start.
    let (repository, id, _) = stream(true).await;
    let store = repository.store();
    let snapshot = store.load_snapshot(&id).await.unwrap().unwrap();
    assert_eq!(snapshot.stream_version, 8);
    let loaded = repository
        .load_at(
            &id,
            AsOf::Time(minute(8) - chrono::Duration::milliseconds(1)),
        )
        .await
        .unwrap();
    assert_eq!((loaded.version, loaded.snapshot_version), (7, None));
    assert_eq!(loaded.state, expected(7));
}

#[tokio::test]
async fn a_condition_parsed_from_text_stops_the_debugger() {
    let (repository, id, _) = stream(false).await;
    // Balances: 10, 30, 5, 45, 95, 70, 140, 220, 195, 295.
    let condition: StateCondition = "balance >= 100".parse().unwrap();
    let mut debugger = repository.debugger(&id, AsOf::Version(0)).await.unwrap();
    let hit = debugger
        .run_until(|account, _| condition.matches(account))
        .unwrap();
    assert_eq!(hit.version, 7);
    assert!(condition.holds(&hit.after));
    assert!(!condition.holds(&hit.before));
    // A path into an array: the fourth movement was a deposit of 40.
    let fourth: StateCondition = "movements[3] == 40".parse().unwrap();
    let mut debugger = repository.debugger(&id, AsOf::Version(0)).await.unwrap();
    let mut out = Vec::new();
    let stopped = debugger
        .print_until(&mut out, |account, _| fourth.matches(account))
        .unwrap();
    assert_eq!(stopped, Some(4));
}
