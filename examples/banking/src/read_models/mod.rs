//! The read side: three read models, each kept up to date by a
//! [`ProjectionManager`] from the event store, each in the store that
//! suits its queries:
//!
//! | read model | store | delivery | query |
//! |---|---|---|---|
//! | [`balances`] | PostgreSQL key/value | exactly once | one account's balance |
//! | [`statements`] | PostgreSQL JSONB documents | exactly once | an account's lines between two dates |
//! | [`daily_totals`] | Redis hashes | at least once, idempotent apply | one day's counters |
//!
//! [`ReadModels`] wires them to the servers. A caller that wants to read
//! its own write waits for the position the write returned
//! ([`wait_for`](ReadModels::wait_for)).

pub mod balances;
pub mod daily_totals;
pub mod statements;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use composable_rust::postgres::PostgresProjectionStore;
use composable_rust::prelude::*;
use composable_rust::redis::RedisProjectionStore;
use composable_rust::{Position, ProjectionError, ProjectionManager};
use tokio::task::JoinHandle;

use crate::error::ServiceError;
use balances::{Balance, Balances, balance_key};
use daily_totals::{DailyTotals, DailyTotalsProjection};
use statements::{StatementLine, Statements};

/// Where the read models live.
#[derive(Debug, Clone)]
pub struct ReadModelSettings {
    /// PostgreSQL (`DATABASE_URL`).
    pub database_url: String,
    /// The PostgreSQL schema of the balances and statements.
    pub schema: String,
    /// Redis (`REDIS_URL`).
    pub redis_url: String,
    /// The prefix of every Redis key of the daily totals.
    pub redis_prefix: String,
}

/// The three read models and their managers.
#[derive(Debug)]
pub struct ReadModels {
    balances: ProjectionManager<Balances>,
    statements: ProjectionManager<Statements>,
    daily: ProjectionManager<DailyTotalsProjection>,
    postgres: PostgresProjectionStore,
    redis: RedisProjectionStore,
}

/// A running manager's task.
pub type Running = JoinHandle<Result<(), ProjectionError>>;

impl ReadModels {
    /// Connects the read models to PostgreSQL and Redis (creating their
    /// tables), reading events from `events`. Nothing runs yet: call
    /// [`start`](Self::start) or [`catch_up`](Self::catch_up).
    pub async fn connect(
        settings: &ReadModelSettings,
        events: Arc<dyn EventStore>,
    ) -> Result<Self, ServiceError> {
        let postgres = PostgresProjectionStore::connect(&settings.database_url)
            .await
            .map_err(ProjectionError::from)?
            .with_schema(&settings.schema)
            .map_err(ProjectionError::from)?;
        postgres.migrate().await.map_err(ProjectionError::from)?;
        let statements = Statements::new(&postgres)
            .await
            .map_err(ProjectionError::from)?;
        let redis = RedisProjectionStore::connect(&settings.redis_url, &settings.redis_prefix)
            .await
            .map_err(ProjectionError::from)?;
        let shared = Arc::new(postgres.clone());
        Ok(Self {
            balances: ProjectionManager::new(
                Balances::default(),
                Arc::clone(&shared),
                Arc::clone(&events),
            ),
            statements: ProjectionManager::new(statements, shared, Arc::clone(&events)),
            daily: ProjectionManager::new(
                DailyTotalsProjection::default(),
                Arc::new(redis.clone()),
                events,
            ),
            postgres,
            redis,
        })
    }

    /// Runs the three managers in the background until
    /// [`shutdown`](Self::shutdown).
    pub fn start(&self) -> [Running; 3] {
        [
            self.balances.start(),
            self.statements.start(),
            self.daily.start(),
        ]
    }

    /// Applies every event stored so far, in this task (tests, scripts).
    pub async fn catch_up(&self) -> Result<(), ServiceError> {
        self.balances.catch_up().await?;
        self.statements.catch_up().await?;
        self.daily.catch_up().await?;
        Ok(())
    }

    /// Waits until the three have applied `position` (read your writes).
    pub async fn wait_for(
        &self,
        position: Position,
        timeout: Duration,
    ) -> Result<(), ServiceError> {
        self.balances.wait_for(position, timeout).await?;
        self.statements.wait_for(position, timeout).await?;
        self.daily.wait_for(position, timeout).await?;
        Ok(())
    }

    /// Asks the running managers to stop after their current batch.
    pub fn shutdown(&self) {
        self.balances.shutdown();
        self.statements.shutdown();
        self.daily.shutdown();
    }

    /// `account`'s balance, as the read model has it.
    pub async fn balance(&self, account: &str) -> Result<Option<Balance>, ServiceError> {
        Ok(self.postgres.get_json(&balance_key(account)).await?)
    }

    /// `account`'s statement from `from` to `to`, both days included.
    pub async fn statement(
        &self,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StatementLine>, ServiceError> {
        self.statements
            .projection()
            .statement(account, from, to)
            .await
    }

    /// The totals of day `date`.
    pub async fn daily_totals(&self, date: NaiveDate) -> Result<DailyTotals, ServiceError> {
        Ok(daily_totals::daily_totals(&self.redis, date).await?)
    }

    /// The balances manager.
    pub fn balances(&self) -> &ProjectionManager<Balances> {
        &self.balances
    }

    /// The statements manager.
    pub fn statements(&self) -> &ProjectionManager<Statements> {
        &self.statements
    }

    /// The daily totals manager.
    pub fn daily(&self) -> &ProjectionManager<DailyTotalsProjection> {
        &self.daily
    }
}
