//! [`PostgresProjectionTx`]: a unit of work that is one PostgreSQL
//! transaction, with its key/value and document writes buffered until
//! they are needed (see the type's documentation for why).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use composable_rust_core::ProjectionError;
use composable_rust_core::projection::ProjectionTx;
use sqlx::{PgConnection, Postgres, Transaction};
use tokio::sync::OwnedMutexGuard;

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
///
/// # While a blue/green version loads
///
/// A unit of work of a version being bulk-loaded (see
/// [`BlueGreen`](super::BlueGreen)) starts its transaction only when it
/// first needs the database, and only after every unit of work begun
/// before it has committed or been dropped (they take turns, in order).
/// Until then it only buffers, so the load applies the next batch while
/// the previous one commits, and a read still sees every earlier batch.
pub struct PostgresProjectionTx {
    /// `None` until the unit of work first needs the database (only while
    /// a version bulk-loads; otherwise it starts with the unit of work).
    tx: Option<Transaction<'static, Postgres>>,
    /// This unit of work's turn to use the database, while a version
    /// bulk-loads: held from the start of its transaction until it ends.
    /// Declared after `tx`, so it is released after the transaction is
    /// dropped.
    turn: Option<OwnedMutexGuard<()>>,
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
    /// A unit of work in transaction `tx`, begun already.
    pub(crate) fn new(tx: Transaction<'static, Postgres>, store: Arc<Inner>) -> Self {
        Self {
            tx: Some(tx),
            turn: None,
            store,
            values: BTreeMap::new(),
            documents: BTreeMap::new(),
        }
    }

    /// A unit of work of a bulk-loading store, whose transaction starts
    /// on first use (see [`attach`](Self::attach)).
    pub(crate) fn deferred(store: Arc<Inner>) -> Self {
        Self {
            tx: None,
            turn: None,
            store,
            values: BTreeMap::new(),
            documents: BTreeMap::new(),
        }
    }

    /// The transaction, started now if it has not been: after waiting
    /// for this unit of work's turn when the store bulk-loads.
    async fn attach(&mut self) -> Result<&mut Transaction<'static, Postgres>, PostgresError> {
        if self.tx.is_none() {
            if let Some(bulk) = &self.store.bulk {
                self.turn = Some(bulk.turn().await);
            }
            let tx = self
                .store
                .pool
                .begin()
                .await
                .map_err(|error| self.store.error(error, "begin a unit of work"))?;
            self.tx = Some(tx);
        }
        Ok(self.tx.as_mut().expect("started above"))
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
        self.unbuffered().await
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
        self.send_buffered(NewKeys::Upsert).await
    }

    /// Sends the buffered writes, the new keys of a bulk load as
    /// `new_keys` says.
    async fn send_buffered(&mut self, new_keys: NewKeys) -> Result<(), ProjectionError> {
        self.flush_values(new_keys).await?;
        for (_, writes) in std::mem::take(&mut self.documents) {
            let tx = self.attach().await?;
            writes.table.flush(tx, writes.rows).await?;
        }
        Ok(())
    }

    /// Flushes, then commits the transaction (a unit of work that never
    /// needed the database has none, and nothing to commit).
    pub(crate) async fn commit(mut self) -> Result<(), ProjectionError> {
        self.send_buffered(NewKeys::Copy).await?;
        let Some(tx) = self.tx.take() else {
            return Ok(());
        };
        tx.commit()
            .await
            .map_err(|error| self.store.error(error, "commit a unit of work"))?;
        Ok(())
    }

    /// The connection, without flushing: for statements on tables the
    /// buffer never touches (checkpoints, dead letters), or after a flush.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Backend`] if the transaction could not start.
    pub(crate) async fn unbuffered(&mut self) -> Result<&mut PgConnection, ProjectionError> {
        Ok(&mut **self.attach().await?)
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

    async fn flush_values(&mut self, new_keys: NewKeys) -> Result<(), PostgresError> {
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
        let store = Arc::clone(&self.store);
        let tx = self.attach().await?;
        if let Some(bulk) = &store.bulk {
            // A blue/green load: keys never written go out with COPY (at
            // commit; a flush before upserts them, and still remembers them).
            let mut split = bulk.split(keys.into_iter().zip(data).collect());
            match new_keys {
                NewKeys::Copy if !split.new.is_empty() => {
                    bulk.copy(tx, &split.new)
                        .await
                        .map_err(|error| store.error(error, "bulk-load values"))?;
                }
                NewKeys::Copy => {}
                NewKeys::Upsert => {
                    for (key, value) in split.new.drain(..) {
                        split.keys.push(key);
                        split.data.push(value);
                    }
                }
            }
            (keys, data) = (split.keys, split.data);
        }
        let sql = &store.sql;
        if !keys.is_empty() {
            sqlx::query(&sql.upsert_many)
                .bind(keys)
                .bind(data)
                .execute(&mut **tx)
                .await
                .map_err(|error| store.error(error, "write values"))?;
        }
        if !deleted.is_empty() {
            sqlx::query(&sql.delete_many)
                .bind(deleted)
                .execute(&mut **tx)
                .await
                .map_err(|error| store.error(error, "delete values"))?;
        }
        Ok(())
    }
}

/// How a flush sends the new keys of a bulk load.
#[derive(Clone, Copy)]
enum NewKeys {
    /// With `COPY`: only in the commit, which runs as a task of its own
    /// (see [`PostgresProjectionStore::commit`](super::PostgresProjectionStore)),
    /// because a `COPY` dropped half-way leaves its connection unusable.
    Copy,
    /// With the ordinary upsert: a flush the projection asked for, inside
    /// an `apply` that may be dropped at any await.
    Upsert,
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
        let store = Arc::clone(&self.store);
        Ok(sqlx::query_scalar(&store.sql.get)
            .bind(key)
            .fetch_optional(&mut **self.attach().await?)
            .await
            .map_err(|error| store.error(error, "read a value"))?)
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
        let store = Arc::clone(&self.store);
        let sql = &store.sql;
        let query = match prefix_successor(prefix) {
            Some(upper) => sqlx::query(&sql.delete_range).bind(prefix).bind(upper),
            None => sqlx::query(&sql.delete_from).bind(prefix),
        };
        let done = query
            .execute(&mut **self.attach().await?)
            .await
            .map_err(|error| store.error(error, "delete values by prefix"))?;
        Ok(done.rows_affected())
    }
}
