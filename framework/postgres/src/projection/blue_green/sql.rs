//! The statements of [`BlueGreen`](super::BlueGreen): the registry, the
//! advisory lock, and the switch (views re-pointed in one transaction).
//!
//! Names spliced into SQL are the validated base and version schema names,
//! and table and view names read from the catalog that pass the same
//! validation (anything else stops the switch with `CR-E0136`); all values
//! are bind parameters.

use chrono::{DateTime, Utc};
use composable_rust_core::Position;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::error::BlueGreenError;
use super::{Version, VersionState};
use crate::schema::{SchemaName, check_identifier};

/// The registry's table, in the base schema.
const REGISTRY: &str = "blue_green_versions";
/// sqlx's bookkeeping table in every version schema: not a read model.
const MIGRATIONS: &str = "_sqlx_migrations";

/// Creates the base schema and the registry.
pub(super) fn registry_ddl(base: &SchemaName) -> Vec<String> {
    let b = base.quoted();
    vec![
        format!("CREATE SCHEMA IF NOT EXISTS {b}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {b}.{REGISTRY} (\
                 version     integer     PRIMARY KEY CHECK (version > 0), \
                 schema_name text        NOT NULL UNIQUE, \
                 projection  text        NOT NULL, \
                 state       text        NOT NULL \
                     CHECK (state IN ('building', 'live', 'retired', 'dropped')), \
                 switched_at timestamptz, \
                 retired_at  timestamptz)"
        ),
        // At most one live version, whatever goes wrong.
        format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS blue_green_one_live \
             ON {b}.{REGISTRY} ((true)) WHERE state = 'live'"
        ),
    ]
}

/// A registry row: number, schema, state, switched at, retired at.
type VersionRow = (
    i32,
    String,
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// Every version, oldest first.
pub(super) async fn versions(
    pool: &PgPool,
    base: &SchemaName,
) -> Result<Vec<Version>, sqlx::Error> {
    let rows: Vec<VersionRow> = sqlx::query_as(&format!(
        "SELECT version, schema_name, state, switched_at, retired_at \
             FROM {}.{REGISTRY} WHERE state <> 'dropped' ORDER BY version",
        base.quoted()
    ))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(number, schema, state, switched_at, retired_at)| Version {
            number: u32::try_from(number).unwrap_or_default(),
            schema,
            state: match state.as_str() {
                "live" => VersionState::Live,
                "retired" => VersionState::Retired,
                _ => VersionState::Building,
            },
            switched_at,
            retired_at,
        })
        .collect())
}

/// Tries the session advisory lock of `base`'s rebuilds.
pub(super) async fn try_lock(
    conn: &mut PgConnection,
    base: &SchemaName,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(lock_key(base))
        .fetch_one(conn)
        .await
}

/// Releases the lock [`try_lock`] took.
pub(super) async fn unlock(
    conn: &mut PgConnection,
    base: &SchemaName,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(lock_key(base))
        .fetch_one(conn)
        .await
}

fn lock_key(base: &SchemaName) -> String {
    format!("composable_rust.blue_green:{}", base.as_str())
}

/// Registers the next version as building; its number and schema.
pub(super) async fn add_version(
    pool: &PgPool,
    base: &SchemaName,
    projection: &str,
) -> Result<(u32, SchemaName), sqlx::Error> {
    let (number, schema): (i32, String) = sqlx::query_as(&format!(
        "INSERT INTO {b}.{REGISTRY} (version, schema_name, projection, state) \
         SELECT n, $1 || '_v' || n, $2, 'building' \
         FROM (SELECT COALESCE(MAX(version), 0) + 1 AS n FROM {b}.{REGISTRY}) AS next \
         RETURNING version, schema_name",
        b = base.quoted()
    ))
    .bind(base.as_str())
    .bind(projection)
    .fetch_one(pool)
    .await?;
    let schema = SchemaName::new(&schema)
        .map_err(|error| sqlx::Error::Protocol(format!("version schema name: {error}")))?;
    Ok((u32::try_from(number).unwrap_or_default(), schema))
}

/// Marks a version dropped (never the live one; the row stays, so
/// numbers are never reused) and, if it did, drops its schema.
pub(super) async fn drop_version(
    tx: &mut Transaction<'_, Postgres>,
    base: &SchemaName,
    schema: &SchemaName,
    number: u32,
) -> Result<(), sqlx::Error> {
    let removed: Option<i32> = sqlx::query_scalar(&format!(
        "UPDATE {}.{REGISTRY} SET state = 'dropped' \
         WHERE version = $1 AND state IN ('building', 'retired') RETURNING 1",
        base.quoted()
    ))
    .bind(i32::try_from(number).unwrap_or(i32::MAX))
    .fetch_optional(&mut **tx)
    .await?;
    if removed.is_some() {
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            schema.quoted()
        ))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// What [`switch`] did.
pub(super) enum Switch {
    /// Readers see the new version; `from` was live before.
    Done { from: Option<u32> },
    /// The live version is ahead of the new one: nothing changed.
    Behind,
}

/// Why [`switch`] failed.
pub(super) enum SwitchError {
    Sql(sqlx::Error),
    Name(BlueGreenError),
}

impl From<sqlx::Error> for SwitchError {
    fn from(error: sqlx::Error) -> Self {
        Self::Sql(error)
    }
}

/// In one transaction: checks that the new version (at `position`) is not
/// behind the live one, holding the live checkpoint's row lock so the live
/// manager cannot move it meanwhile; re-points every view of the base
/// schema at the new version's tables; retires the live version.
pub(super) async fn switch(
    pool: &PgPool,
    base: &SchemaName,
    new: &SchemaName,
    number: u32,
    projection: &str,
    position: Position,
    now: DateTime<Utc>,
) -> Result<Switch, SwitchError> {
    let b = base.quoted();
    let mut tx = pool.begin().await?;
    // A long reader transaction on the views must not stall the switch
    // (and the live manager, waiting on its checkpoint row) for long: give
    // up after a while, as a transient error (lock_not_available).
    sqlx::query("SET LOCAL lock_timeout = '10s'")
        .execute(&mut *tx)
        .await?;
    // Switches and drops of this read model, one at a time.
    sqlx::query(&format!("LOCK TABLE {b}.{REGISTRY} IN EXCLUSIVE MODE"))
        .execute(&mut *tx)
        .await?;
    let live: Option<(i32, String)> = sqlx::query_as(&format!(
        "SELECT version, schema_name FROM {b}.{REGISTRY} WHERE state = 'live'"
    ))
    .fetch_optional(&mut *tx)
    .await?;
    let from = match live {
        Some((version, schema)) => {
            let schema =
                SchemaName::new(&schema).map_err(|error| SwitchError::Name(error.into()))?;
            let live_position: Option<(i64, i64)> = sqlx::query_as(&format!(
                "SELECT commit_position, sequence FROM {}.projection_checkpoints \
                 WHERE projection = $1 FOR UPDATE",
                schema.quoted()
            ))
            .bind(projection)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((commit, sequence)) = live_position {
                let live = Position::new(
                    u64::try_from(commit).unwrap_or_default(),
                    u64::try_from(sequence).unwrap_or_default(),
                );
                if live > position {
                    return Ok(Switch::Behind);
                }
            }
            u32::try_from(version).ok()
        }
        None => None,
    };
    let views: Vec<String> =
        sqlx::query_scalar("SELECT viewname::text FROM pg_views WHERE schemaname = $1 ORDER BY 1")
            .bind(base.as_str())
            .fetch_all(&mut *tx)
            .await?;
    for view in views {
        checked(base, &view)?;
        sqlx::query(&format!("DROP VIEW {b}.\"{view}\""))
            .execute(&mut *tx)
            .await?;
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
    )
    .bind(new.as_str())
    .fetch_all(&mut *tx)
    .await?;
    for table in tables {
        if table == MIGRATIONS || table == REGISTRY {
            continue;
        }
        checked(new, &table)?;
        sqlx::query(&format!(
            "CREATE VIEW {b}.\"{table}\" AS SELECT * FROM {}.\"{table}\"",
            new.quoted()
        ))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(&format!(
        "UPDATE {b}.{REGISTRY} SET state = 'retired', retired_at = $1 WHERE state = 'live'"
    ))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "UPDATE {b}.{REGISTRY} SET state = 'live', switched_at = $1 WHERE version = $2"
    ))
    .bind(now)
    .bind(i32::try_from(number).unwrap_or(i32::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Switch::Done { from })
}

/// A catalog name that may be spliced into SQL (quoted), or the error.
fn checked(schema: &SchemaName, name: &str) -> Result<(), SwitchError> {
    check_identifier(name, 63).map_err(|reason| {
        SwitchError::Name(BlueGreenError::UnexpectedName {
            schema: schema.as_str().to_owned(),
            name: name.to_owned(),
            reason,
        })
    })
}
