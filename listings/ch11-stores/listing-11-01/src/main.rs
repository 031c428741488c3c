//! Listing 11-1: the bank's events in PostgreSQL, and three read stores fed
//! from them: PostgreSQL in a separate read database, Redis, and Redis in
//! front of PostgreSQL.
//!
//! Needs `DATABASE_URL` and `REDIS_URL`; `READ_DATABASE_URL` (default:
//! `DATABASE_URL`) is the read database. Each run uses schemas and a key
//! prefix of its own and removes them at the end.

use std::sync::Arc;
use std::time::Duration;

use bank::account::{Account, AccountCommand};
use bank::summaries::{AccountSummaries, AccountSummary, summary_key};
use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::projection::{CacheMode, CachedProjectionStore};
use composable_rust::redis::RedisProjectionStore;
use composable_rust::uuid::Uuid;
use composable_rust::{AggregateRepository, ProjectionManager};
use listing_10_01::{Balance, Balances};

type Error = Box<dyn std::error::Error>;

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name)
        .map_err(|_| format!("{name} is not set: this listing needs PostgreSQL and Redis. Set {name}, or run `source ci/start-services` from the repository's root, which starts both and sets DATABASE_URL and REDIS_URL").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let run = Uuid::new_v4().simple().to_string();
    let write_db = sqlx::PgPool::connect(&env("DATABASE_URL")?).await?;
    let read_url = std::env::var("READ_DATABASE_URL").or_else(|_| env("DATABASE_URL"))?;
    let read_db = sqlx::PgPool::connect(&read_url).await?;
    let events_schema = format!("l11_events_{run}");
    let read_schema = format!("l11_read_{run}");
    let cached_schema = format!("l11_cached_{run}");
    let redis_prefix = format!("listing-11-01:{run}");

    let result = demo(
        &write_db,
        &read_db,
        &events_schema,
        &read_schema,
        &cached_schema,
        &redis_prefix,
    )
    .await;

    sqlx::query(&format!("DROP SCHEMA IF EXISTS {events_schema} CASCADE"))
        .execute(&write_db)
        .await?;
    for schema in [&read_schema, &cached_schema] {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&read_db)
            .await?;
    }
    for prefix in [redis_prefix.clone(), format!("{redis_prefix}:cache")] {
        RedisProjectionStore::connect(&env("REDIS_URL")?, &prefix)
            .await?
            .clear()
            .await?;
    }
    result
}

async fn demo(
    write_db: &sqlx::PgPool,
    read_db: &sqlx::PgPool,
    events_schema: &str,
    read_schema: &str,
    cached_schema: &str,
    redis_prefix: &str,
) -> Result<(), Error> {
    // ANCHOR: write_side
    let events = PostgresEventStore::new(write_db.clone()).with_schema(events_schema)?;
    events.migrate().await?;
    let accounts = AggregateRepository::<Account, _>::new(events.clone(), ());
    // ANCHOR_END: write_side

    // ANCHOR: postgres
    // The read side in its own database: its own URL, its own pool.
    let read_model =
        Arc::new(PostgresProjectionStore::new(read_db.clone()).with_schema(read_schema)?);
    read_model.migrate().await?;
    let on_postgres = ProjectionManager::new(
        AccountSummaries::new(),
        Arc::clone(&read_model),
        events.clone(),
    );
    // ANCHOR_END: postgres

    // ANCHOR: redis
    let redis = Arc::new(RedisProjectionStore::connect(&env("REDIS_URL")?, redis_prefix).await?);
    // Redis is at-least-once, so it gets the idempotent projection.
    let on_redis = ProjectionManager::new(Balances::default(), Arc::clone(&redis), events.clone());
    // ANCHOR_END: redis

    // ANCHOR: cached
    // PostgreSQL is the truth (and keeps the checkpoint); Redis answers reads.
    PostgresProjectionStore::new(read_db.clone())
        .with_schema(cached_schema)?
        .migrate()
        .await?;
    let cached = Arc::new(
        CachedProjectionStore::new(
            PostgresProjectionStore::new(read_db.clone()).with_schema(cached_schema)?,
            RedisProjectionStore::connect(&env("REDIS_URL")?, &format!("{redis_prefix}:cache"))
                .await?,
            CacheMode::WriteThrough,
        )
        .with_ttl(Duration::from_secs(300)),
    );
    let behind_cache =
        ProjectionManager::new(AccountSummaries::new(), Arc::clone(&cached), events.clone());
    // ANCHOR_END: cached

    // ANCHOR: run
    let ada = accounts.stream_id(1)?;
    accounts
        .execute(
            &ada,
            AccountCommand::Open {
                owner: "Ada".into(),
            },
        )
        .await?;
    accounts
        .execute(&ada, AccountCommand::Deposit { amount: 100 })
        .await?;
    accounts
        .execute(&ada, AccountCommand::Withdraw { amount: 30 })
        .await?;

    on_postgres.catch_up().await?;
    on_redis.catch_up().await?;
    behind_cache.catch_up().await?;

    let summary: AccountSummary = read_model
        .get_json(&summary_key(&ada))
        .await?
        .unwrap_or_default();
    println!(
        "postgres: {} has {} ({:?})",
        summary.owner,
        summary.balance,
        read_model.delivery()
    );
    let balance: Balance = redis
        .get_json(&format!("balance:{ada}"))
        .await?
        .unwrap_or_default();
    println!(
        "redis:    balance {} ({:?})",
        balance.balance,
        redis.delivery()
    );
    for _ in 0..3 {
        let cached_summary: AccountSummary = cached
            .get_json(&summary_key(&ada))
            .await?
            .unwrap_or_default();
        assert_eq!(cached_summary.balance, 70);
    }
    let stats = cached.stats();
    println!(
        "cached:   3 reads, {} from Redis, {} from PostgreSQL ({:?})",
        stats.hits,
        stats.misses,
        cached.delivery()
    );
    // ANCHOR_END: run
    Ok(())
}
