//! The new writer: the old catalog's create/update/delete, now commands on
//! the `Product` aggregate.

use composable_rust::AggregateRepository;
use composable_rust::aggregate::RepositoryError;
use composable_rust::postgres::PostgresEventStore;
use sqlx::PgPool;

use crate::MigrationError;
use crate::product::{Product, ProductCommand, product_stream};

// ANCHOR: service
/// The catalog's writes, event sourced, behind the methods the old
/// `Catalog` had, so callers switch over by changing one type.
#[derive(Debug)]
pub struct ProductService {
    products: AggregateRepository<Product, PostgresEventStore>,
    pool: PgPool,
}

impl ProductService {
    pub fn new(events: PostgresEventStore, pool: PgPool) -> Self {
        Self {
            products: AggregateRepository::new(events, ()),
            pool,
        }
    }

    /// Creates a product; its id comes from the legacy table's sequence,
    /// as before, so the old readers (and a rollback to the old code)
    /// never see an id twice.
    pub async fn create(&self, name: &str, price_cents: i64) -> Result<i64, MigrationError> {
        let id: i64 =
            sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('products', 'id'))")
                .fetch_one(&self.pool)
                .await?;
        let name = name.to_owned();
        self.execute(id, ProductCommand::Create { name, price_cents })
            .await?;
        Ok(id)
    }

    /// Sets the name and the price; returns how many events that took
    /// (0 when nothing changed).
    pub async fn update(
        &self,
        id: i64,
        name: &str,
        price_cents: i64,
    ) -> Result<u64, MigrationError> {
        let name = name.to_owned();
        self.execute(id, ProductCommand::Update { name, price_cents })
            .await
    }

    pub async fn delete(&self, id: i64) -> Result<u64, MigrationError> {
        self.execute(id, ProductCommand::Delete).await
    }

    /// Runs `command` on product `id`, reloading and deciding again on a
    /// concurrency conflict; returns how many events were appended.
    async fn execute(&self, id: i64, command: ProductCommand) -> Result<u64, MigrationError> {
        let stream = product_stream(id)?;
        match self
            .products
            .execute_with_retry(&stream, 3, || command.clone())
            .await
        {
            Ok(done) => Ok(done.events.len() as u64),
            Err(RepositoryError::Rejected(source)) => Err(MigrationError::Rejected { id, source }),
            Err(RepositoryError::Store(error)) => Err(error.into()),
        }
    }
}
// ANCHOR_END: service
