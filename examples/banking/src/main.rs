//! The bank, start to finish: two accounts, deposits, a transfer, the same
//! transfer sent twice, a transfer to a closed account that is refunded, a
//! refused overdraft, a transfer that misses its deadline, then the
//! statement for a date range and the daily totals, from the read models.
//!
//! Needs PostgreSQL (`DATABASE_URL`) and Redis (`REDIS_URL`). It writes to
//! the schema `banking` and the Redis prefix `banking`, and empties both
//! first, so every run prints the same. The bank's clock is a `TestClock`
//! starting on 3 March 2025: the run is reproducible, and the transfer
//! deadline passes without waiting for it.

use std::sync::Arc;
use std::time::Duration;

use banking::read_models::ReadModelSettings;
use banking::{Bank, ReadModels, ServiceError, TransferStatus, euros, money};
use chrono::{NaiveDate, TimeZone, Utc};
use composable_rust::TestClock;
use composable_rust::postgres::PostgresEventStore;
use composable_rust::prelude::*;
use composable_rust::redis::RedisProjectionStore;

/// The schema and the Redis prefix of this program.
const NAMESPACE: &str = "banking";
/// How long a transfer has to complete.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30);

type Error = Box<dyn std::error::Error + Send + Sync>;

fn env(name: &str, example: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| {
        format!(
            "{name} is not set: the bank needs it. Set it, e.g. {name}={example}, or run \
             `source ci/start-services`"
        )
        .into()
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let database_url = env(
        "DATABASE_URL",
        "postgres://postgres@localhost:5432/postgres",
    )?;
    let redis_url = env("REDIS_URL", "redis://127.0.0.1:6379")?;
    reset(&database_url, &redis_url).await?;

    let events = PostgresEventStore::connect(&database_url)
        .await?
        .with_schema(NAMESPACE)?;
    events.migrate().await?;
    let events: Arc<dyn EventStore> = Arc::new(events);
    let clock = TestClock::starting_at(Utc.with_ymd_and_hms(2025, 3, 3, 9, 0, 0).unwrap());
    let bank = Bank::start(
        Arc::clone(&events),
        Arc::new(clock.clone()),
        TRANSFER_TIMEOUT,
    )
    .await?;
    let settings = ReadModelSettings {
        database_url,
        schema: NAMESPACE.to_owned(),
        redis_url,
        redis_prefix: NAMESPACE.to_owned(),
    };
    let read_models = ReadModels::connect(&settings, Arc::clone(&events)).await?;
    let running = read_models.start();
    let minute = || clock.advance(Duration::from_secs(60));

    println!("1. Alice (overdraft limit 100.00) and Bob (no overdraft) open accounts.");
    bank.open("alice", "Alice", euros(100)).await?;
    bank.open("bob", "Bob", 0).await?;
    minute();
    bank.deposit("alice", euros(500)).await?;
    bank.deposit("bob", euros(50)).await?;
    print_balances(&bank, &["alice", "bob"]).await?;

    println!("\n2. Alice sends Bob 120.00 (transfer t-1001).");
    minute();
    bank.transfer("t-1001", "alice", "bob", euros(120)).await?;
    bank.process().await?;
    print_status(&bank, "t-1001").await?;
    print_balances(&bank, &["alice", "bob"]).await?;

    println!("\n3. Her app retries the same request: t-1001 is not paid twice.");
    let again = bank.transfer("t-1001", "alice", "bob", euros(120)).await?;
    bank.process().await?;
    println!("   request: {again:?}");
    print_balances(&bank, &["alice", "bob"]).await?;
    let reused = bank.transfer("t-1001", "alice", "bob", euros(999)).await;
    print_refusal("the same id for another amount", reused.map(|_| ()));

    println!("\n4. Carol opens and closes an account; Alice sends her 80.00 (t-1002).");
    minute();
    bank.open("carol", "Carol", 0).await?;
    bank.close("carol").await?;
    bank.transfer("t-1002", "alice", "carol", euros(80)).await?;
    bank.process().await?;
    print_status(&bank, "t-1002").await?;
    print_balances(&bank, &["alice", "carol"]).await?;

    println!("\n5. The next day, Bob tries to withdraw 500.00.");
    clock.advance(Duration::from_secs(24 * 60 * 60));
    print_refusal(
        "withdraw 500.00",
        bank.withdraw("bob", euros(500)).await.map(|_| ()),
    );
    bank.withdraw("bob", euros(20)).await?;
    println!("   he withdraws 20.00 instead");
    print_balances(&bank, &["bob"]).await?;

    println!("\n6. Bob's branch goes offline; Alice sends him 30.00 (t-1003).");
    minute();
    bank.teller().set_offline("bob", true);
    bank.transfer("t-1003", "alice", "bob", euros(30)).await?;
    bank.process().await?;
    print_status(&bank, "t-1003").await?;
    print_balances(&bank, &["alice", "bob"]).await?;
    println!(
        "   ... {}s pass: the deadline ...",
        TRANSFER_TIMEOUT.as_secs() + 1
    );
    clock.advance(TRANSFER_TIMEOUT + Duration::from_secs(1));
    bank.settle_timeouts().await;
    bank.teller().set_offline("bob", false);
    println!("   the branch is back; the late credit is delivered");
    bank.retry_pending().await?;
    let head = bank.process().await?;
    for refusal in bank.transfer_refusals("t-1003").await? {
        println!("   refused: {refusal}");
    }
    print_status(&bank, "t-1003").await?;
    print_balances(&bank, &["alice", "bob"]).await?;

    read_models.wait_for(head, Duration::from_secs(10)).await?;
    let (day1, day2) = (date(2025, 3, 3), date(2025, 3, 4));
    println!("\n7. Alice's statement, {day1} to {day2} (read model: PostgreSQL documents):");
    for line in read_models.statement("alice", day1, day2).await? {
        println!(
            "   {} {:>8} {:>8}  {}",
            line.at.format("%Y-%m-%d %H:%M"),
            money(line.amount),
            money(line.balance),
            line.description
        );
    }
    println!("   ... and for {day2} only:");
    for line in read_models.statement("alice", day2, day2).await? {
        println!(
            "   {} {:>8}  {}",
            line.date,
            money(line.amount),
            line.description
        );
    }

    println!("\n8. Daily totals (read model: Redis counters):");
    for day in [day1, day2] {
        let totals = read_models.daily_totals(day).await?;
        println!(
            "   {day}: deposits {} ({}), withdrawals {} ({}), transfers {} ({}), refunds {}",
            money(totals.deposits),
            totals.deposit_count,
            money(totals.withdrawals),
            totals.withdrawal_count,
            money(totals.transfers),
            totals.transfer_count,
            money(totals.refunds)
        );
    }

    println!("\n9. Balances (read model: PostgreSQL), and the money check:");
    let mut total = 0;
    for account in ["alice", "bob", "carol"] {
        if let Some(balance) = read_models.balance(account).await? {
            let closed = if balance.closed { " (closed)" } else { "" };
            println!("   {account}: {}{closed}", money(balance.balance));
            total += balance.balance;
        }
    }
    println!(
        "   sum of balances {} = cash in 550.00 - cash out 20.00",
        money(total)
    );

    read_models.shutdown();
    for task in running {
        task.await??;
    }
    bank.shutdown().await;
    Ok(())
}

/// Empties the schema and the Redis prefix, so every run starts afresh.
/// The schema's name is a constant, not input: formatting it is safe.
async fn reset(database_url: &str, redis_url: &str) -> Result<(), Error> {
    let pool = sqlx::PgPool::connect(database_url).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{NAMESPACE}\" CASCADE"))
        .execute(&pool)
        .await?;
    pool.close().await;
    RedisProjectionStore::connect(redis_url, NAMESPACE)
        .await?
        .clear()
        .await?;
    Ok(())
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid date")
}

async fn print_balances(bank: &Bank, accounts: &[&str]) -> Result<(), ServiceError> {
    let mut shown = Vec::new();
    for account in accounts {
        let state = bank.account(account).await?;
        shown.push(format!("{account} {}", money(state.balance)));
    }
    println!("   balances: {}", shown.join(", "));
    Ok(())
}

async fn print_status(bank: &Bank, transfer: &str) -> Result<(), ServiceError> {
    let status = match bank.transfer_status(transfer).await? {
        TransferStatus::Failed(reason) => format!("failed: {reason}"),
        other => format!("{other:?}").to_lowercase(),
    };
    println!("   {transfer}: {status}");
    Ok(())
}

fn print_refusal(what: &str, result: Result<(), ServiceError>) {
    match result {
        Ok(()) => println!("   {what}: accepted"),
        Err(error) => println!("   {what}: refused: {error}"),
    }
}
