//! The import: one stream per legacy row, holding a single `Imported`
//! event with the row as it was.

use std::collections::BTreeMap;
use std::fmt;

use composable_rust::event::EventMetadata;
use composable_rust::prelude::*;
use composable_rust::{EventStoreError, ExpectedVersion, NewEvent};
use legacy_catalog::Product as Row;
use sqlx::PgPool;

use crate::MigrationError;
use crate::product::{ProductEvent, product_stream};

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows read from the legacy table.
    pub rows: u64,
    /// Streams written by this run.
    pub imported: u64,
    /// Rows whose stream existed already (an earlier run wrote it).
    pub already_imported: u64,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "read {} rows: imported {}, already imported {}",
            self.rows, self.imported, self.already_imported
        )
    }
}

// ANCHOR: import
/// Imports every row of `products` into its own stream, `product-<id>`,
/// reading the table a page at a time in id order.
///
/// Idempotent and resumable without a checkpoint: each stream is appended
/// with `ExpectedVersion::NoStream`, so a row imported by an earlier run
/// (finished or interrupted) is refused by the store and counted as
/// already imported, and nothing is written twice.
pub async fn import(
    pool: &PgPool,
    events: &impl EventStore,
    page_size: i64,
) -> Result<ImportReport, MigrationError> {
    let mut report = ImportReport::default();
    let mut after_id = 0; // keyset paging: ids of BIGSERIAL start at 1
    loop {
        let page: Vec<Row> = sqlx::query_as(
            "SELECT id, name, price_cents FROM products WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(page_size)
        .fetch_all(pool)
        .await?;
        let Some(last) = page.last() else {
            return Ok(report);
        };
        after_id = last.id;
        for row in page {
            report.rows += 1;
            let stream = product_stream(row.id)?;
            let imported = ProductEvent::Imported {
                name: row.name,
                price_cents: row.price_cents,
            };
            let event = NewEvent::from_event(&imported)?.with_metadata(provenance());
            match events
                .append(&stream, ExpectedVersion::NoStream, vec![event])
                .await
            {
                Ok(_) => report.imported += 1,
                Err(EventStoreError::WrongExpectedVersion { .. }) => report.already_imported += 1,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// Says where an imported event came from, for whoever reads it later.
fn provenance() -> EventMetadata {
    EventMetadata {
        headers: BTreeMap::from([("imported-from".to_owned(), "products".to_owned())]),
        ..EventMetadata::default()
    }
}
// ANCHOR_END: import
