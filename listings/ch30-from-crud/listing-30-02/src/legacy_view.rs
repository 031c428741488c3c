//! The legacy table as a read model: once the event-sourced side writes,
//! this projection keeps `products` up to date for the old readers.

use composable_rust::event::decode;
use composable_rust::postgres::PostgresProjectionStore;
use composable_rust::postgres::projection::{PostgresProjectionTx, sql_error};
use composable_rust::prelude::*;
use composable_rust::{ProjectionError, Upcasters};

use crate::product::{ProductEvent, legacy_id};

// ANCHOR: projection
/// Writes every product event to the legacy `products` table, in the same
/// transaction as the projection's checkpoint (exactly once).
#[derive(Debug, Default)]
pub struct LegacyProducts {
    upcasters: Upcasters,
}

#[async_trait]
impl Projection for LegacyProducts {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "legacy-products"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        legacy_id(&event.stream_id).is_some()
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let Some(change) = decode::<ProductEvent>(event, &self.upcasters)? else {
            return Ok(());
        };
        let id = legacy_id(&event.stream_id)
            .ok_or_else(|| ProjectionError::apply(format!("{}: no id", event.stream_id)))?;
        let statement = match change {
            // The same statement for both: applying an import again (a
            // rebuild) writes the row it came from.
            ProductEvent::Imported { name, price_cents }
            | ProductEvent::Created { name, price_cents } => sqlx::query(
                "INSERT INTO products (id, name, price_cents) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE \
                 SET name = EXCLUDED.name, price_cents = EXCLUDED.price_cents",
            )
            .bind(id)
            .bind(name)
            .bind(price_cents),
            ProductEvent::Renamed { name } => {
                sqlx::query("UPDATE products SET name = $2 WHERE id = $1")
                    .bind(id)
                    .bind(name)
            }
            ProductEvent::Repriced { price_cents } => {
                sqlx::query("UPDATE products SET price_cents = $2 WHERE id = $1")
                    .bind(id)
                    .bind(price_cents)
            }
            ProductEvent::Deleted => sqlx::query("DELETE FROM products WHERE id = $1").bind(id),
        };
        statement
            .execute(tx.connection().await?)
            .await
            .map_err(sql_error)?;
        Ok(())
    }

    /// A rebuild empties the table and writes it again from the events:
    /// run one only after the import is complete.
    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        sqlx::query("DELETE FROM products")
            .execute(tx.connection().await?)
            .await
            .map_err(sql_error)?;
        Ok(())
    }
}
// ANCHOR_END: projection
