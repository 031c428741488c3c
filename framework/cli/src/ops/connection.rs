//! The connection options every operations command takes, and opening the
//! stores they name: the event store in PostgreSQL, and the projection
//! store in PostgreSQL (the same database, in `--projection-schema`) or in
//! Redis (`--key-prefix`).
//!
//! Before anything else, the schema is looked up in the catalog, so a
//! wrong `--schema` says so (and names the schemas that do hold an event
//! store) instead of failing later with a missing-table error.

use std::sync::Arc;

use clap::Args;
use composable_rust_core::Position;
use composable_rust_core::ProjectionError;
use composable_rust_core::projection::{DeadLetter, ProjectionCheckpoint, ProjectionRequest};
use composable_rust_postgres::{DEFAULT_SCHEMA, PostgresEventStore, PostgresProjectionStore};
use composable_rust_redis::RedisProjectionStore;
use uuid::Uuid;

use super::error::OpsError;

/// Where the stores are.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The PostgreSQL database of the event store.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// The schema of the event store's tables.
    #[arg(long, global = true, default_value = DEFAULT_SCHEMA)]
    pub schema: String,
    /// The schema of the projection store's tables [default: --schema].
    #[arg(long, global = true)]
    pub projection_schema: Option<String>,
    /// The key prefix of a Redis projection store (instead of PostgreSQL).
    #[arg(long, global = true)]
    pub key_prefix: Option<String>,
    /// The Redis server of a Redis projection store (with --key-prefix).
    #[arg(long, env = "REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<String>,
}

impl StoreArgs {
    /// The event store, after checking that its schema holds one.
    pub(crate) async fn events(&self) -> Result<PostgresEventStore, OpsError> {
        let url = self
            .database_url
            .as_deref()
            .ok_or(OpsError::MissingDatabaseUrl)?;
        let events = PostgresEventStore::connect(url)
            .await?
            .with_schema(&self.schema)?;
        let status = events.schema_status().await?;
        if !status.exists {
            return Err(OpsError::SchemaNotFound {
                schema: status.schema,
                others: status.other_event_schemas,
            });
        }
        if !status.event_tables {
            return Err(OpsError::NoEventTables {
                schema: status.schema,
                others: status.other_event_schemas,
            });
        }
        Ok(events)
    }

    /// The event store and the projection store.
    pub(crate) async fn stores(&self) -> Result<(PostgresEventStore, Projections), OpsError> {
        let events = self.events().await?;
        let projections = match &self.key_prefix {
            Some(prefix) => {
                let url = self
                    .redis_url
                    .as_deref()
                    .ok_or_else(|| OpsError::MissingRedisUrl {
                        prefix: prefix.clone(),
                    })?;
                Projections::Redis(Arc::new(RedisProjectionStore::connect(url, prefix).await?))
            }
            None => {
                let schema = self.projection_schema.as_deref().unwrap_or(&self.schema);
                // The same database: the projection store's schema is
                // checked against the catalog through a store in it.
                let status = events.clone().with_schema(schema)?.schema_status().await?;
                if !status.exists {
                    return Err(OpsError::SchemaNotFound {
                        schema: status.schema,
                        others: status.other_event_schemas,
                    });
                }
                if !status.projection_tables {
                    return Err(OpsError::NoProjectionTables {
                        schema: status.schema,
                    });
                }
                if !status.request_table {
                    return Err(OpsError::NoRequestTable {
                        schema: status.schema,
                    });
                }
                let store =
                    PostgresProjectionStore::new(events.pool().clone()).with_schema(schema)?;
                Projections::Postgres(Arc::new(store))
            }
        };
        Ok((events, projections))
    }
}

/// A projection store of either kind; every operation the commands need,
/// type-free.
#[derive(Debug, Clone)]
pub(crate) enum Projections {
    /// In PostgreSQL.
    Postgres(Arc<PostgresProjectionStore>),
    /// In Redis.
    Redis(Arc<RedisProjectionStore>),
}

impl Projections {
    /// Every projection's checkpoint, by name.
    pub(crate) async fn checkpoints(&self) -> Result<Vec<(String, Position)>, OpsError> {
        Ok(match self {
            Self::Postgres(store) => store
                .checkpoints()
                .await?
                .into_iter()
                .map(|checkpoint| (checkpoint.projection, checkpoint.position))
                .collect(),
            Self::Redis(store) => store.checkpoints().await?,
        })
    }

    /// The dead letters of `projection`, or of every projection.
    pub(crate) async fn dead_letters(
        &self,
        projection: Option<&str>,
    ) -> Result<Vec<DeadLetter>, OpsError> {
        Ok(match (self, projection) {
            (Self::Postgres(store), Some(name)) => store.dead_letters(name).await?,
            (Self::Postgres(store), None) => store.all_dead_letters().await?,
            (Self::Redis(store), Some(name)) => store.dead_letters(name).await?,
            (Self::Redis(store), None) => store.all_dead_letters().await?,
        })
    }

    /// The requests waiting for `projection`'s manager.
    pub(crate) async fn pending_requests(
        &self,
        projection: &str,
    ) -> Result<Vec<ProjectionRequest>, OpsError> {
        Ok(match self {
            Self::Postgres(store) => store.pending_requests(projection).await?,
            Self::Redis(store) => store.pending_requests(projection).await?,
        })
    }

    /// Files `request`; `false` for a retry of a dead letter that does not
    /// exist.
    pub(crate) async fn request(
        &self,
        projection: &str,
        request: ProjectionRequest,
    ) -> Result<bool, OpsError> {
        Ok(match self {
            Self::Postgres(store) => store.request(projection, request).await?,
            Self::Redis(store) => store.request(projection, request).await?,
        })
    }

    /// Removes a dead letter without applying it; whether there was one.
    pub(crate) async fn discard(&self, projection: &str, event_id: Uuid) -> Result<bool, OpsError> {
        Ok(match self {
            Self::Postgres(store) => discard(store.as_ref(), projection, event_id).await?,
            Self::Redis(store) => discard(store.as_ref(), projection, event_id).await?,
        })
    }
}

/// Removes a dead letter in a unit of work of its own, as
/// `ProjectionManager::discard_dead_letter` does.
async fn discard<S: ProjectionCheckpoint>(
    store: &S,
    projection: &str,
    event_id: Uuid,
) -> Result<bool, ProjectionError> {
    let mut tx = store.begin().await?;
    let removed = store
        .remove_dead_letter(&mut tx, projection, event_id)
        .await?;
    if removed {
        store.commit(tx).await?;
    }
    Ok(removed)
}
