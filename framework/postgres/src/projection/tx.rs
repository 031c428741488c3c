//! [`PostgresProjectionTx`]: a unit of work that is one PostgreSQL
//! transaction, with its key/value and document writes buffered until
//! they are needed (see the type's documentation for why).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use composable_rust_core::ProjectionError;
use composable_rust_core::projection::ProjectionTx;
use sqlx::{PgConnection, Postgres, Transaction};

use super::documents::DocumentTable;
use super::sql::prefix_successor;
use super::store::Inner;
use crate::error::PostgresError;

/// A unit of work on a [`PostgresProjectionStore`](super::PostgresProjectionStore):
/// one PostgreSQL transaction.
///
/// `get` sees this unit of work's own writes. Dropping it without
/// committing rolls the transaction back (sqlx sends the `ROLLBACK` when
/// the connection is next used or returned to the pool). A projection's
/// own SQL goes through [`connection`](Self::connection), in the same
/// transaction.
///
/// # Writes are buffered
///
/// A manager applies hundreds of events per unit of work. Sending each
/// `save` as its own statement would cost one round trip per event, and
/// round trips, not PostgreSQL, would set the pace. So `save`, `delete`
/// and [`DocumentTable::upsert`](super::DocumentTable::upsert) only record
/// the latest value per key; the writes go out as one statement per table
/// (`INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE`, and one
/// `DELETE ... = ANY(...)`) when they must:
///
/// - at commit;
/// - before [`connection`](Self::connection) hands out the connection, so
///   a projection's own SQL sees them;
/// - on [`flush`](Self::flush).
///
/// Reads through the unit of work (`get`,
/// [`DocumentTable::get`](super::DocumentTable::get)) look at the buffer
/// first, so they see the unit of work's own writes, as they would
/// without it. Rows go out sorted by key, so concurrent writers lock rows
/// in the same order.
///
/// A write the database would reject for its data (a key or a JSON string
/// holding a NUL character) is refused when it is made, as
/// [`ProjectionError::Apply`], so the event that caused it can be
/// dead-lettered; errors that surface at commit are infrastructure errors.
pub struct PostgresProjectionTx {
    tx: Transaction<'static, Postgres>,
    store: Arc<Inner>,
    /// Key -> the latest value written (`None`: deleted).
    values: BTreeMap<String, Option<Vec<u8>>>,
    /// Qualified table name -> its buffered document writes.
    documents: BTreeMap<String, DocumentWrites>,
}

/// The buffered writes of one document table.
pub(crate) struct DocumentWrites {
    pub(crate) table: DocumentTable,
    /// Id -> the latest document written (`None`: deleted).
    pub(crate) rows: BTreeMap<String, Option<serde_json::Value>>,
}

impl PostgresProjectionTx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>, store: Arc<Inner>) -> Self {
        Self {
            tx,
            store,
            values: BTreeMap::new(),
            documents: BTreeMap::new(),
        }
    }

    /// The transaction's connection, for a projection's own SQL in the
    /// same transaction as the checkpoint, after sending the buffered
    /// writes (so the SQL sees them).
    ///
    /// Convert errors of your statements with [`sql_error`](super::sql_error).
    /// Do not commit or roll back through it: the manager commits the unit
    /// of work.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Backend`] if sending the buffered writes failed.
    pub async fn connection(&mut self) -> Result<&mut PgConnection, ProjectionError> {
        self.flush().await?;
        Ok(&mut self.tx)
    }

    /// The schema of the store this unit of work belongs to.
    pub fn schema(&self) -> &str {
        self.store.schema.as_str()
    }

    /// Sends the buffered writes now (commit does it anyway).
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Backend`] if a statement fails.
    pub async fn flush(&mut self) -> Result<(), ProjectionError> {
        self.flush_values().await?;
        for (_, writes) in std::mem::take(&mut self.documents) {
            writes.table.flush(&mut self.tx, writes.rows).await?;
        }
        Ok(())
    }

    /// Flushes, then commits the transaction.
    pub(crate) async fn commit(mut self) -> Result<(), ProjectionError> {
        self.flush().await?;
        let store = Arc::clone(&self.store);
        self.tx
            .commit()
            .await
            .map_err(|error| store.error(error, "commit a unit of work"))?;
        Ok(())
    }

    /// The connection, without flushing: for statements on tables the
    /// buffer never touches (checkpoints, dead letters), or after a flush.
    pub(crate) fn unbuffered(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The buffered writes of `table`.
    pub(crate) fn document_writes(
        &mut self,
        table: &DocumentTable,
    ) -> &mut BTreeMap<String, Option<serde_json::Value>> {
        &mut self
            .documents
            .entry(table.qualified_name().to_owned())
            .or_insert_with(|| DocumentWrites {
                table: table.clone(),
                rows: BTreeMap::new(),
            })
            .rows
    }

    async fn flush_values(&mut self) -> Result<(), PostgresError> {
        if self.values.is_empty() {
            return Ok(());
        }
        let mut keys = Vec::new();
        let mut data = Vec::new();
        let mut deleted = Vec::new();
        for (key, value) in std::mem::take(&mut self.values) {
            match value {
                Some(value) => {
                    keys.push(key);
                    data.push(value);
                }
                None => deleted.push(key),
            }
        }
        if let Some(bulk) = &self.store.bulk {
            // A blue/green load: keys never written go out with COPY.
            let split = bulk.split(keys.into_iter().zip(data).collect());
            (keys, data) = (split.keys, split.data);
            if !split.new.is_empty() {
                bulk.copy(&mut self.tx, &split.new)
                    .await
                    .map_err(|error| self.store.error(error, "bulk-load values"))?;
            }
        }
        let sql = &self.store.sql;
        if !keys.is_empty() {
            sqlx::query(&sql.upsert_many)
                .bind(keys)
                .bind(data)
                .execute(&mut *self.tx)
                .await
                .map_err(|error| self.store.error(error, "write values"))?;
        }
        if !deleted.is_empty() {
            sqlx::query(&sql.delete_many)
                .bind(deleted)
                .execute(&mut *self.tx)
                .await
                .map_err(|error| self.store.error(error, "delete values"))?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for PostgresProjectionTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresProjectionTx")
            .field("schema", &self.schema())
            .field("buffered_values", &self.values.len())
            .field("buffered_tables", &self.documents.len())
            .finish_non_exhaustive()
    }
}

/// Whether PostgreSQL `text` can hold `key` (it cannot hold NUL).
pub(crate) fn valid_key(key: &str) -> bool {
    !key.contains('\0')
}

/// Refuses a key PostgreSQL cannot store, as an apply error (so the event
/// that produced it is dead-lettered rather than retried forever).
pub(crate) fn check_key(key: &str, what: &str) -> Result<(), ProjectionError> {
    if valid_key(key) {
        Ok(())
    } else {
        Err(ProjectionError::apply(format!(
            "the {what} {key:?} contains a NUL character, which PostgreSQL text cannot hold"
        )))
    }
}

#[async_trait]
impl ProjectionTx for PostgresProjectionTx {
    /// Buffers the write (see [Writes are buffered](Self#writes-are-buffered)).
    async fn save(&mut self, key: &str, data: &[u8]) -> Result<(), ProjectionError> {
        check_key(key, "key")?;
        self.values.insert(key.to_owned(), Some(data.to_vec()));
        Ok(())
    }

    /// This unit of work's own write if there is one, otherwise the row as
    /// this transaction sees it.
    async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, ProjectionError> {
        if let Some(buffered) = self.values.get(key) {
            return Ok(buffered.clone());
        }
        if !valid_key(key) {
            return Ok(None);
        }
        Ok(sqlx::query_scalar(&self.store.sql.get)
            .bind(key)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(|error| self.store.error(error, "read a value"))?)
    }

    /// Buffers the delete.
    async fn delete(&mut self, key: &str) -> Result<(), ProjectionError> {
        if valid_key(key) {
            self.values.insert(key.to_owned(), None);
        }
        Ok(())
    }

    /// Drops buffered writes under `prefix` and deletes the key range
    /// `[prefix, successor(prefix))` at once (an index range scan; `%`, `_`
    /// and `\` are ordinary characters). Returns how many rows it deleted.
    async fn delete_prefix(&mut self, prefix: &str) -> Result<u64, ProjectionError> {
        if !valid_key(prefix) {
            return Ok(0);
        }
        self.values.retain(|key, _| !key.starts_with(prefix));
        let sql = &self.store.sql;
        let query = match prefix_successor(prefix) {
            Some(upper) => sqlx::query(&sql.delete_range).bind(prefix).bind(upper),
            None => sqlx::query(&sql.delete_from).bind(prefix),
        };
        let done = query
            .execute(&mut *self.tx)
            .await
            .map_err(|error| self.store.error(error, "delete values by prefix"))?;
        Ok(done.rows_affected())
    }
}
