//! LISTEN/NOTIFY: another store instance's appends wake a subscriber, and
//! another schema's appends do not.

use std::time::Duration;

use composable_rust_core::{EventStore, ExpectedVersion};
use composable_rust_postgres::PostgresEventStore;
use tokio::time::timeout;

use super::support::{self, event, stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_woken_by_appends_of_another_store_instance() {
    let follower = support::fresh_store().await;
    // Another instance (own pool, as in another process) on the same schema.
    let writer = PostgresEventStore::new(support::pool().await)
        .with_schema(follower.schema())
        .unwrap();
    // A third, in another schema: its appends notify another channel.
    let elsewhere = support::fresh_store().await;

    let mut changes = follower.subscribe();
    // The LISTEN task bumps once when it starts listening.
    timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("the LISTEN task must start within 5 s")
        .unwrap();
    changes.borrow_and_update();

    elsewhere
        .append(&stream("other"), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    assert!(
        timeout(Duration::from_millis(300), changes.changed())
            .await
            .is_err(),
        "an append in another schema must not wake this subscriber"
    );

    writer
        .append(&stream("wake"), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("an append by another instance must wake the subscriber (NOTIFY)")
        .unwrap();
}
