//! Listing 39-1: a projection shared by partitioned workers.
//!
//! The projection is an ordinary PostgreSQL projection (account balances);
//! [`start_worker`] runs one worker of it: the streams are hashed into 8
//! partitions, the worker leases its fair share of them in PostgreSQL and
//! runs a manager per partition, each with its own checkpoint, committed
//! with the read model and fenced by the lease.

use std::time::Duration;

use composable_rust::ProjectionError;
use composable_rust::postgres::partition::{PartitionError, PartitionLeases, PartitionedWorker};
use composable_rust::postgres::{
    PostgresEventStore, PostgresProjectionStore, PostgresProjectionTx,
};
use composable_rust::prelude::*;
use composable_rust::projection::ProjectionConfig;
use tokio::task::JoinHandle;

// ANCHOR: projection
/// Each account's balance, under `balance:<stream>`.
#[derive(Debug, Default)]
pub struct Balances;

#[async_trait]
impl Projection for Balances {
    type Store = PostgresProjectionStore;

    fn name(&self) -> &str {
        "balances"
    }

    async fn apply(
        &self,
        event: &StoredEvent,
        tx: &mut PostgresProjectionTx,
    ) -> Result<(), ProjectionError> {
        let amount = event.payload["amount"].as_i64().unwrap_or(0);
        let key = format!("balance:{}", event.stream_id);
        let balance: i64 = tx.get_json(&key).await?.unwrap_or(0);
        tx.save_json(&key, &(balance + amount)).await
    }

    async fn reset(&self, tx: &mut PostgresProjectionTx) -> Result<(), ProjectionError> {
        tx.delete_prefix("balance:").await.map(|_| ())
    }
}
// ANCHOR_END: projection

// ANCHOR: migrate
/// Creates the tables once at startup: the lease tables live beside the
/// read model (same database, same schema), because every commit checks
/// the lease in the read model's transaction.
pub async fn migrate(
    events: &PostgresEventStore,
    store: &PostgresProjectionStore,
) -> Result<(), Box<dyn std::error::Error>> {
    events.migrate().await?;
    store.migrate().await?;
    PartitionLeases::new(store).migrate().await?;
    Ok(())
}
// ANCHOR_END: migrate

// ANCHOR: worker
/// A running worker's task: what `run` returned when it stopped.
pub type WorkerTask = JoinHandle<Result<(), PartitionError>>;

/// Starts worker `id` of the balances projection on a task. Every worker
/// of a projection must use the same partition count.
pub fn start_worker(
    id: &str,
    events: PostgresEventStore,
    store: PostgresProjectionStore,
) -> Result<(PartitionedWorker<Balances>, WorkerTask), PartitionError> {
    let worker = PartitionedWorker::builder(Balances, store, events, 8)
        .with_worker_id(id)
        // A worker that stops heartbeating loses its partitions after 3 s;
        // the others take them over.
        .with_lease_duration(Duration::from_secs(3))
        .with_heartbeat(Duration::from_millis(250))
        .with_config(ProjectionConfig {
            batch_size: 200,
            idle_poll_interval: Duration::from_millis(100),
            ..ProjectionConfig::default()
        })
        .build()?;
    let task = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run().await }
    });
    Ok((worker, task))
}
// ANCHOR_END: worker

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use composable_rust::postgres::partition::{Partition, partition_checkpoint};
    use composable_rust::projection::{ProjectionCheckpoint, ProjectionStoreExt};
    use composable_rust::{EventStore, ExpectedVersion, NewEvent, Position, StreamId};
    use composable_rust_testing::fixtures::TestSchema;
    use composable_rust_testing::services::database_url;

    use super::*;

    async fn stores(
        schema: &str,
    ) -> Result<(PostgresEventStore, PostgresProjectionStore), Box<dyn std::error::Error>> {
        let events = PostgresEventStore::connect(&database_url())
            .await?
            .with_schema(schema)?;
        let store = PostgresProjectionStore::connect(&database_url())
            .await?
            .with_schema(schema)?;
        Ok((events, store))
    }

    // ANCHOR: test
    #[tokio::test(flavor = "multi_thread")]
    async fn workers_share_the_partitions_and_a_newcomer_gets_its_share()
    -> Result<(), Box<dyn std::error::Error>> {
        let schema = TestSchema::new();
        let (events, store) = stores(schema.name()).await?;
        migrate(&events, &store).await?;
        // 400 deposits of 1 to 20 accounts.
        let mut head = Position::START;
        for account in 0..20 {
            let stream = StreamId::new(format!("account-{account}"))?;
            let deposits = (0..20)
                .map(|_| NewEvent::new("Deposited", serde_json::json!({ "amount": 1 })))
                .collect();
            head = events
                .append(&stream, ExpectedVersion::Any, deposits)
                .await?
                .last_position;
        }

        let (a, a_task) = start_worker("a", events.clone(), store.clone())?;
        let (b, b_task) = start_worker("b", events.clone(), store.clone())?;
        let mut b_owned = b.subscribe_owned();
        b_owned.wait_for(|owned| owned.len() == 4).await?;
        // A third worker joins: 3 + 3 + 2 partitions.
        let (c, c_task) = start_worker("c", events.clone(), store.clone())?;
        let mut c_owned = c.subscribe_owned();
        c_owned.wait_for(|owned| owned.len() >= 2).await?;

        // Every partition's checkpoint reaches the last event.
        let eight = NonZeroU32::new(8).expect("8 > 0");
        for partition in Partition::all(eight) {
            let name = partition_checkpoint("balances", partition);
            while store.load_position(&name).await?.is_none_or(|at| at < head) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        for account in 0..20 {
            let balance: Option<i64> = store
                .get_json(&format!("balance:account-{account}"))
                .await?;
            assert_eq!(balance, Some(20), "every deposit applied once");
        }
        for worker in [&a, &b, &c] {
            worker.shutdown();
        }
        for task in [a_task, b_task, c_task] {
            task.await??;
        }
        Ok(())
    }
    // ANCHOR_END: test
}
