//! Listing 23-1: the bank's account 1 through a week of deposits and
//! withdrawals, then read back as it was: on March 1st, after its third
//! event, and event by event with the replay debugger.
//!
//! The events are recorded on a test clock, one day apart, so the times
//! (and this program's output) are the same on every run.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bank::account::{Account, AccountCommand, AccountEvent};
use composable_rust::aggregate::StateCondition;
use composable_rust::chrono::{TimeZone, Utc};
use composable_rust::{AggregateRepository, AsOf, InMemoryEventStore, SnapshotPolicy, TestClock};

type Error = Box<dyn std::error::Error>;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    // ANCHOR: history
    let start = Utc.with_ymd_and_hms(2026, 2, 26, 9, 0, 0).unwrap();
    let clock = TestClock::starting_at(start);
    let store = InMemoryEventStore::new().with_clock(Arc::new(clock.clone()));
    let accounts =
        AggregateRepository::<Account, _>::new(store, ()).with_snapshots(SnapshotPolicy::every(3));
    let id = accounts.stream_id(1)?;
    let week = [
        AccountCommand::Open {
            owner: "Ada".into(),
        },
        AccountCommand::Deposit { amount: 100 },
        AccountCommand::Withdraw { amount: 30 },
        AccountCommand::Deposit { amount: 250 },
        AccountCommand::Withdraw { amount: 200 },
        AccountCommand::Withdraw { amount: 90 },
    ];
    for command in week {
        accounts.execute(&id, command).await?;
        clock.advance(DAY);
    }
    // ANCHOR_END: history

    // ANCHOR: as_of
    let now = accounts.load(&id).await?;
    println!(
        "now: balance {} at version {}",
        now.state.balance, now.version
    );

    let march_1st = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let then = accounts.load_at(&id, AsOf::Time(march_1st)).await?;
    // The snapshot (at version 6) is past March 1st: replayed from the start.
    let from = then
        .snapshot_version
        .map_or("the first event".to_owned(), |v| {
            format!("the snapshot at {v}")
        });
    println!(
        "as of {}: balance {} at version {} (replayed from {from})",
        AsOf::Time(march_1st),
        then.state.balance,
        then.version,
    );

    let third = accounts.load_at(&id, AsOf::Version(3)).await?;
    println!("as of version 3: balance {}", third.state.balance);

    if let Err(error) = accounts.load_at(&id, AsOf::Version(7)).await {
        println!("as of version 7: {error}");
    }
    // ANCHOR_END: as_of

    // ANCHOR: debugger
    println!();
    let mut debugger = accounts.debugger(&id, AsOf::Version(3)).await?;
    let mut out = io::stdout().lock();
    debugger.print_state(&mut out)?;
    debugger.print_until(
        &mut out,
        |_account, event| matches!(event, AccountEvent::Withdrawn { amount } if *amount >= 100),
    )?;
    // ANCHOR_END: debugger

    // ANCHOR: condition
    // A condition from text, as a command line would take it: on with the
    // replay until the balance is below 100.
    let low: StateCondition = "balance < 100".parse()?;
    debugger.print_until(&mut out, |account, _| low.matches(account))?;
    // ANCHOR_END: condition
    Ok(())
}
