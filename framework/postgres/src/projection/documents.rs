//! [`DocumentTable`]: queryable read models, one JSON document per row.
//!
//! A document table is `{schema}.{name}(id text PRIMARY KEY, data jsonb
//! NOT NULL, updated_at timestamptz)` with a GIN index
//! (`jsonb_path_ops`) on `data`. Projections write documents through
//! their unit of work ([`upsert`](DocumentTable::upsert),
//! [`delete`](DocumentTable::delete), [`clear`](DocumentTable::clear));
//! queries read committed documents with a [`DocumentQuery`]:
//!
//! - a **containment filter**, `data @> filter`: "documents that contain
//!   this JSON", e.g. `{"customer": "c-7", "status": "shipped"}`; the GIN
//!   index answers it;
//! - **ordering** by a top-level field, compared as JSON (numbers as
//!   numbers, strings as strings; documents without the field come last
//!   in ascending order), then by id;
//! - **limit** and **offset**.
//!
//! The table name is validated ([`CR-E0110`](crate::codes::INVALID_TABLE_NAME))
//! and, like the schema, quoted into statements built once when the
//! [`DocumentTable`] is made; the filter and the field name are bind
//! parameters. The statements differ only in which clauses they have, so
//! a table has one statement per combination, each prepared once per
//! connection.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use composable_rust_core::ProjectionError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{Executor, PgConnection, PgPool};

use super::store::PostgresProjectionStore;
use super::tx::{PostgresProjectionTx, check_key, valid_key};
use crate::error::PostgresError;

/// The longest accepted table name, in bytes: the index is named
/// `<table>_data_idx`, and index names share the 63-byte limit.
const MAX_LEN: usize = 54;

/// Names a document table may not take: the stores' own tables.
const RESERVED: &[&str] = &[
    "events",
    "snapshots",
    "projection_data",
    "projection_checkpoints",
    "projection_dead_letters",
    "_sqlx_migrations",
];

/// A table of JSON documents in a [`PostgresProjectionStore`]'s schema.
/// Clones are cheap and share the statements.
///
/// ```no_run
/// use composable_rust_core::ProjectionError;
/// use composable_rust_postgres::{DocumentTable, PostgresProjectionStore, PostgresProjectionTx, SortOrder};
/// use serde_json::json;
///
/// # async fn example(store: PostgresProjectionStore) -> Result<(), Box<dyn std::error::Error>> {
/// let orders = DocumentTable::new(&store, "orders")?;
/// orders.ensure().await?; // once at startup, after store.migrate()
///
/// // In a projection's apply(), through its unit of work:
/// # async fn apply(orders: &DocumentTable, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
/// orders
///     .upsert(tx, "order-1", &json!({ "customer": "c-7", "total": 1250, "placed_at": "2025-01-02" }))
///     .await?;
/// # Ok(())
/// # }
///
/// // Queries read committed documents:
/// let latest = orders
///     .query()
///     .contains(json!({ "customer": "c-7" }))
///     .order_by("placed_at", SortOrder::Descending)
///     .limit(10)
///     .fetch_all()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DocumentTable {
    inner: Arc<TableInner>,
}

struct TableInner {
    name: String,
    qualified: String,
    schema: String,
    pool: PgPool,
    sql: TableStatements,
}

/// The statements of one document table.
struct TableStatements {
    create_table: String,
    create_index: String,
    /// Serializes concurrent `ensure()`s of one table: `$1` its name.
    lock: String,
    get: String,
    upsert_many: String,
    delete_many: String,
    clear: String,
    /// `[filtered][order]`, order being none, ascending, descending.
    select: [[String; 3]; 2],
    /// `[filtered]`.
    count: [String; 2],
}

/// How a [`DocumentQuery`] sorts by a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Smallest first; documents without the field last.
    Ascending,
    /// Largest first; documents without the field first.
    Descending,
}

impl SortOrder {
    fn sql(self) -> &'static str {
        match self {
            Self::Ascending => "ASC",
            Self::Descending => "DESC",
        }
    }

    fn index(order: Option<Self>) -> usize {
        match order {
            None => 0,
            Some(Self::Ascending) => 1,
            Some(Self::Descending) => 2,
        }
    }
}

/// One row of a document table.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The document's id (the table's primary key).
    pub id: String,
    /// The document.
    pub data: Value,
}

impl Document {
    /// The document as a `T`.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Serialization`] if it does not fit `T`.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ProjectionError> {
        T::deserialize(&self.data).map_err(|error| ProjectionError::Serialization {
            key: self.id.clone(),
            reason: error.to_string(),
        })
    }
}

/// A query of a [`DocumentTable`]'s committed documents, built with
/// [`DocumentTable::query`]. Without [`order_by`](Self::order_by) the
/// documents come in id order; without [`limit`](Self::limit), all of
/// them.
#[derive(Clone)]
pub struct DocumentQuery {
    table: DocumentTable,
    contains: Option<Value>,
    order_by: Option<(String, SortOrder)>,
    limit: Option<u64>,
    offset: u64,
}

impl DocumentTable {
    /// The table `name` in `store`'s schema. Nothing is created: call
    /// [`ensure`](Self::ensure) once at startup.
    ///
    /// # Errors
    ///
    /// [`PostgresError::InvalidTableName`] (`CR-E0110`) unless `name`
    /// matches `^[a-z_][a-z0-9_]{0,53}$`, does not start with `pg_`, does
    /// not end with `_data_idx` and is not one of the stores' own tables.
    pub fn new(store: &PostgresProjectionStore, name: &str) -> Result<Self, PostgresError> {
        validate(name)?;
        let schema = store.schema().to_owned();
        // Both names are validated: no quote can occur in them.
        let qualified = format!("\"{schema}\".\"{name}\"");
        let sql = TableStatements::new(&qualified, name);
        Ok(Self {
            inner: Arc::new(TableInner {
                name: name.to_owned(),
                qualified,
                schema,
                pool: store.pool().clone(),
                sql,
            }),
        })
    }

    /// The table's name, without the schema.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The table's quoted, schema-qualified name, e.g. `"shop"."orders"`.
    pub fn qualified_name(&self) -> &str {
        &self.inner.qualified
    }

    /// Creates the table and its GIN index if they do not exist. Call it
    /// once at startup, after
    /// [`PostgresProjectionStore::migrate`](PostgresProjectionStore::migrate)
    /// (which creates the schema); concurrent calls are safe.
    ///
    /// # Errors
    ///
    /// [`ProjectionMigrationsNotRun`](PostgresError::ProjectionMigrationsNotRun)
    /// (`CR-E0107`) if the schema does not exist;
    /// [`Unreachable`](PostgresError::Unreachable) (`CR-E0102`) or
    /// [`ProjectionQuery`](PostgresError::ProjectionQuery) (`CR-E0109`) if a
    /// statement fails.
    pub async fn ensure(&self) -> Result<(), PostgresError> {
        let failed = |error| {
            PostgresError::from_sqlx_projection(
                error,
                "create a document table",
                &self.inner.schema,
                None,
            )
        };
        let sql = &self.inner.sql;
        let mut tx = self.inner.pool.begin().await.map_err(failed)?;
        sqlx::query(&sql.lock)
            .bind(&self.inner.qualified)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        tx.execute(sql.create_table.as_str())
            .await
            .map_err(failed)?;
        tx.execute(sql.create_index.as_str())
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)
    }

    /// Writes `document` under `id` in `tx`, replacing any previous one.
    /// Buffered until the unit of work needs it (see
    /// [`PostgresProjectionTx`]).
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Serialization`] if `document` cannot be turned
    /// into JSON; [`ProjectionError::Apply`] if `id` or one of its strings
    /// holds a NUL character (PostgreSQL cannot store it).
    pub async fn upsert<T: Serialize + ?Sized + Sync>(
        &self,
        tx: &mut PostgresProjectionTx,
        id: &str,
        document: &T,
    ) -> Result<(), ProjectionError> {
        check_key(id, "document id")?;
        let value = serde_json::to_value(document).map_err(|error| self.serde_error(id, &error))?;
        if holds_nul(&value) {
            return Err(ProjectionError::apply(format!(
                "document {id:?} of {} holds a NUL character (\\u0000), which PostgreSQL jsonb \
                 cannot store",
                self.inner.name
            )));
        }
        tx.document_writes(self).insert(id.to_owned(), Some(value));
        Ok(())
    }

    /// Deletes the document `id` in `tx` (buffered); a missing one is not
    /// an error.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for backends that check.
    pub async fn delete(
        &self,
        tx: &mut PostgresProjectionTx,
        id: &str,
    ) -> Result<(), ProjectionError> {
        if valid_key(id) {
            tx.document_writes(self).insert(id.to_owned(), None);
        }
        Ok(())
    }

    /// The document `id` as `tx` sees it, including its own writes.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Serialization`] if it does not fit `T`;
    /// [`ProjectionError::Backend`] if the query fails.
    pub async fn get<T: DeserializeOwned>(
        &self,
        tx: &mut PostgresProjectionTx,
        id: &str,
    ) -> Result<Option<T>, ProjectionError> {
        let value = match tx.document_writes(self).get(id) {
            Some(buffered) => buffered.clone(),
            None if !valid_key(id) => None,
            None => sqlx::query_scalar(&self.inner.sql.get)
                .bind(id)
                .fetch_optional(tx.unbuffered().await?)
                .await
                .map_err(|error| self.error(error, "read a document"))?,
        };
        value.map(|value| self.decode(id, value)).transpose()
    }

    /// Deletes every document of the table in `tx` (for a projection's
    /// `reset`); returns how many rows were deleted. A `DELETE`, not a
    /// `TRUNCATE`: queries running meanwhile keep seeing the old rows
    /// until the unit of work commits.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Backend`] if the statement fails.
    pub async fn clear(&self, tx: &mut PostgresProjectionTx) -> Result<u64, ProjectionError> {
        tx.document_writes(self).clear();
        let done = tx
            .unbuffered()
            .await?
            .execute(self.inner.sql.clear.as_str())
            .await
            .map_err(|error| self.error(error, "clear a document table"))?;
        Ok(done.rows_affected())
    }

    /// The committed document `id`.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Serialization`] if it does not fit `T`;
    /// [`ProjectionError::Backend`] if the query fails.
    pub async fn fetch<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>, ProjectionError> {
        if !valid_key(id) {
            return Ok(None);
        }
        let value: Option<Value> = sqlx::query_scalar(&self.inner.sql.get)
            .bind(id)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|error| self.error(error, "read a document"))?;
        value.map(|value| self.decode(id, value)).transpose()
    }

    /// A query of every committed document; narrow it with the
    /// [`DocumentQuery`] methods.
    pub fn query(&self) -> DocumentQuery {
        DocumentQuery {
            table: self.clone(),
            contains: None,
            order_by: None,
            limit: None,
            offset: 0,
        }
    }

    /// Sends `rows` (the buffered writes of a unit of work) in one upsert
    /// and one delete statement.
    pub(crate) async fn flush(
        &self,
        connection: &mut PgConnection,
        rows: BTreeMap<String, Option<Value>>,
    ) -> Result<(), PostgresError> {
        let mut ids = Vec::new();
        let mut documents = Vec::new();
        let mut deleted = Vec::new();
        for (id, document) in rows {
            match document {
                Some(document) => {
                    ids.push(id);
                    documents.push(document);
                }
                None => deleted.push(id),
            }
        }
        if !ids.is_empty() {
            sqlx::query(&self.inner.sql.upsert_many)
                .bind(ids)
                .bind(documents)
                .execute(&mut *connection)
                .await
                .map_err(|error| self.error(error, "write documents"))?;
        }
        if !deleted.is_empty() {
            sqlx::query(&self.inner.sql.delete_many)
                .bind(deleted)
                .execute(&mut *connection)
                .await
                .map_err(|error| self.error(error, "delete documents"))?;
        }
        Ok(())
    }

    fn error(&self, error: sqlx::Error, operation: &'static str) -> PostgresError {
        PostgresError::from_sqlx_projection(
            error,
            operation,
            &self.inner.schema,
            Some(&self.inner.qualified),
        )
    }

    fn serde_error(&self, id: &str, error: &serde_json::Error) -> ProjectionError {
        ProjectionError::Serialization {
            key: format!("{}/{id}", self.inner.name),
            reason: error.to_string(),
        }
    }

    fn decode<T: DeserializeOwned>(&self, id: &str, value: Value) -> Result<T, ProjectionError> {
        serde_json::from_value(value).map_err(|error| self.serde_error(id, &error))
    }
}

impl fmt::Debug for DocumentTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentTable")
            .field("table", &self.inner.qualified)
            .finish_non_exhaustive()
    }
}

impl DocumentQuery {
    /// Only documents that contain `filter` (`data @> filter`, answered by
    /// the GIN index): `{"customer": "c-7"}` matches every document whose
    /// `customer` is `"c-7"`, `{"tags": ["gift"]}` every document whose
    /// `tags` array holds `"gift"`. Replaces an earlier filter.
    #[must_use]
    pub fn contains(mut self, filter: Value) -> Self {
        self.contains = Some(filter);
        self
    }

    /// Sorts by the top-level field `field`, compared as JSON, then by id
    /// in the same direction. Replaces an earlier ordering.
    #[must_use]
    pub fn order_by(mut self, field: impl Into<String>, order: SortOrder) -> Self {
        self.order_by = Some((field.into(), order));
        self
    }

    /// At most `limit` documents.
    #[must_use]
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Skips the first `offset` documents.
    #[must_use]
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// The table queried.
    pub fn table(&self) -> &DocumentTable {
        &self.table
    }

    /// The matching documents, on the table's pool.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Backend`] if the query fails (`CR-E0111` if the
    /// table does not exist).
    pub async fn fetch_all(&self) -> Result<Vec<Document>, ProjectionError> {
        self.fetch_all_on(&self.table.inner.pool).await
    }

    /// The matching documents, each as a `T`.
    ///
    /// # Errors
    ///
    /// As [`fetch_all`](Self::fetch_all), and
    /// [`ProjectionError::Serialization`] if a document does not fit `T`.
    pub async fn fetch_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, ProjectionError> {
        self.fetch_all()
            .await?
            .iter()
            .map(Document::deserialize)
            .collect()
    }

    /// How many documents match the filter (ordering, limit and offset
    /// ignored).
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Backend`] if the query fails.
    pub async fn count(&self) -> Result<u64, ProjectionError> {
        let table = &self.table.inner;
        let mut query = sqlx::query_scalar(&table.sql.count[usize::from(self.contains.is_some())]);
        if let Some(filter) = &self.contains {
            query = query.bind(filter);
        }
        let count: i64 = query
            .fetch_one(&table.pool)
            .await
            .map_err(|error| self.table.error(error, "count documents"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// PostgreSQL's plan for this query (`EXPLAIN`, one line per plan
    /// line), e.g. to check that the GIN index is used.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Backend`] if the query fails.
    pub async fn explain(&self) -> Result<String, ProjectionError> {
        let sql = format!("EXPLAIN {}", self.sql());
        let lines: Vec<(String,)> = self
            .bind(sqlx::query_as(&sql))
            .fetch_all(&self.table.inner.pool)
            .await
            .map_err(|error| self.table.error(error, "explain a document query"))?;
        let lines: Vec<String> = lines.into_iter().map(|(line,)| line).collect();
        Ok(lines.join("\n"))
    }

    pub(crate) async fn fetch_all_on(
        &self,
        pool: &PgPool,
    ) -> Result<Vec<Document>, ProjectionError> {
        let rows: Vec<(String, Value)> = self
            .bind(sqlx::query_as(self.sql()))
            .fetch_all(pool)
            .await
            .map_err(|error| self.table.error(error, "query documents"))?;
        Ok(rows
            .into_iter()
            .map(|(id, data)| Document { id, data })
            .collect())
    }

    fn sql(&self) -> &str {
        let order = SortOrder::index(self.order_by.as_ref().map(|(_, order)| *order));
        &self.table.inner.sql.select[usize::from(self.contains.is_some())][order]
    }

    /// Binds the parameters in the order [`select_sql`] numbers them.
    fn bind<'q, O>(
        &'q self,
        mut query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        if let Some(filter) = &self.contains {
            query = query.bind(filter);
        }
        if let Some((field, _)) = &self.order_by {
            query = query.bind(field.as_str());
        }
        let limit = self
            .limit
            .map(|limit| i64::try_from(limit).unwrap_or(i64::MAX));
        query
            .bind(limit)
            .bind(i64::try_from(self.offset).unwrap_or(i64::MAX))
    }
}

impl fmt::Debug for DocumentQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentQuery")
            .field("table", &self.table.inner.qualified)
            .field("contains", &self.contains)
            .field("order_by", &self.order_by)
            .field("limit", &self.limit)
            .field("offset", &self.offset)
            .finish()
    }
}

impl TableStatements {
    fn new(qualified: &str, name: &str) -> Self {
        let select =
            |filtered: bool, order: Option<SortOrder>| select_sql(qualified, filtered, order);
        let orders = [
            None,
            Some(SortOrder::Ascending),
            Some(SortOrder::Descending),
        ];
        Self {
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {qualified} ( \
                     id         text        PRIMARY KEY, \
                     data       jsonb       NOT NULL, \
                     updated_at timestamptz NOT NULL DEFAULT now() \
                 )"
            ),
            create_index: format!(
                "CREATE INDEX IF NOT EXISTS \"{name}_data_idx\" \
                 ON {qualified} USING gin (data jsonb_path_ops)"
            ),
            lock: "SELECT pg_advisory_xact_lock(hashtext($1))".to_owned(),
            get: format!("SELECT data FROM {qualified} WHERE id = $1"),
            upsert_many: format!(
                "INSERT INTO {qualified} (id, data, updated_at) \
                 SELECT u.id, u.data, now() \
                 FROM unnest($1::text[], $2::jsonb[]) AS u(id, data) \
                 ON CONFLICT (id) DO UPDATE SET \
                     data = EXCLUDED.data, updated_at = EXCLUDED.updated_at"
            ),
            delete_many: format!("DELETE FROM {qualified} WHERE id = ANY($1::text[])"),
            clear: format!("DELETE FROM {qualified}"),
            select: [false, true].map(|filtered| orders.map(|order| select(filtered, order))),
            count: [
                format!("SELECT count(*) FROM {qualified}"),
                format!("SELECT count(*) FROM {qualified} WHERE data @> $1::jsonb"),
            ],
        }
    }
}

/// The SELECT of a query: parameters numbered in order, for the filter
/// (if any), the field (if ordered), the limit (NULL: none), the offset.
fn select_sql(qualified: &str, filtered: bool, order: Option<SortOrder>) -> String {
    let mut next = 0;
    let mut parameter = || {
        next += 1;
        format!("${next}")
    };
    let mut sql = format!("SELECT id, data FROM {qualified}");
    if filtered {
        sql.push_str(&format!(" WHERE data @> {}::jsonb", parameter()));
    }
    match order {
        Some(order) => {
            let direction = order.sql();
            sql.push_str(&format!(
                " ORDER BY data -> {}::text {direction}, id {direction}",
                parameter()
            ));
        }
        None => sql.push_str(" ORDER BY id"),
    }
    sql.push_str(&format!(
        " LIMIT {}::int8 OFFSET {}::int8",
        parameter(),
        parameter()
    ));
    sql
}

/// Validates a document table name.
fn validate(name: &str) -> Result<(), PostgresError> {
    let reject = |reason| {
        Err(PostgresError::InvalidTableName {
            name: name.to_owned(),
            reason,
        })
    };
    if let Err(reason) = crate::schema::check_identifier(name, MAX_LEN) {
        return reject(reason);
    }
    if name.ends_with("_data_idx") {
        return reject("names ending with _data_idx are kept for the tables' indexes");
    }
    if RESERVED.contains(&name) {
        return reject("it is one of the event and projection stores' own tables");
    }
    Ok(())
}

/// Whether a string or key anywhere in `value` holds a NUL character,
/// which jsonb cannot store.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust_core::CodedError;
    use serde_json::json;

    #[test]
    fn table_names_are_validated() {
        for good in ["orders", "_x", "order_history_2", &"x".repeat(54)] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Orders",
            "1orders",
            "orders-x",
            "orders\"; DROP TABLE x; --",
            "pg_orders",
            "orders_data_idx",
            "events",
            "projection_data",
            &"x".repeat(55),
        ] {
            let error = validate(bad).unwrap_err();
            assert_eq!(error.code().as_str(), "CR-E0110", "{bad}");
            assert!(error.to_string().starts_with("[CR-E0110] "), "{error}");
        }
    }

    #[test]
    fn select_statements_number_their_parameters_in_order() {
        let q = "\"s\".\"t\"";
        assert_eq!(
            select_sql(q, false, None),
            "SELECT id, data FROM \"s\".\"t\" ORDER BY id LIMIT $1::int8 OFFSET $2::int8"
        );
        assert_eq!(
            select_sql(q, true, Some(SortOrder::Descending)),
            "SELECT id, data FROM \"s\".\"t\" WHERE data @> $1::jsonb \
             ORDER BY data -> $2::text DESC, id DESC LIMIT $3::int8 OFFSET $4::int8"
        );
        assert_eq!(
            select_sql(q, false, Some(SortOrder::Ascending)),
            "SELECT id, data FROM \"s\".\"t\" ORDER BY data -> $1::text ASC, id ASC \
             LIMIT $2::int8 OFFSET $3::int8"
        );
    }

    #[test]
    fn nul_characters_are_found_anywhere() {
        assert!(!holds_nul(&json!({"a": ["b", 1, null, {"c": "d"}]})));
        assert!(holds_nul(&json!({"a": ["b\u{0}"]})));
        assert!(holds_nul(&json!({"a\u{0}": 1})));
    }
}
