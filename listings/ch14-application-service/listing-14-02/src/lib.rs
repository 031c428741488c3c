//! Listing 14-2: the account service of listing 14-1 on PostgreSQL. Only
//! the stores change: the event store and the read model both live in
//! PostgreSQL (here in one schema of one database).

use std::sync::Arc;

use composable_rust::ProjectionManager;
use composable_rust::postgres::{PostgresEventStore, PostgresProjectionStore};
use listing_14_01::service::AccountService;
use listing_14_01::summaries::AccountSummaries;
use sqlx::PgPool;

// ANCHOR: postgres
pub type Summaries = ProjectionManager<AccountSummaries<PostgresProjectionStore>>;

/// The account service on PostgreSQL, with its events and its read model
/// in `schema`, and the projection manager that keeps the read model (the
/// caller starts it).
pub async fn postgres_service(
    pool: PgPool,
    schema: &str,
) -> Result<(AccountService<PostgresProjectionStore>, Summaries), Box<dyn std::error::Error>> {
    let events = PostgresEventStore::new(pool.clone()).with_schema(schema)?;
    events.migrate().await?;
    let read_model = PostgresProjectionStore::new(pool).with_schema(schema)?;
    read_model.migrate().await?;

    let summaries = ProjectionManager::new(
        AccountSummaries::new(),
        Arc::new(read_model),
        events.clone(),
    );
    let service = AccountService::new(Arc::new(events), summaries.clone());
    Ok((service, summaries))
}
// ANCHOR_END: postgres
