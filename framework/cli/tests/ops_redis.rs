//! The operations commands on a Redis projection store (the event store in
//! PostgreSQL, in a schema of its own; the projection store under a key
//! prefix of its own), with a real projection manager.

mod ops_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use composable_rust_core::projection::{ProjectionManager, ProjectionStoreExt};
use composable_rust_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
use composable_rust_postgres::PostgresEventStore;
use composable_rust_redis::RedisProjectionStore;
use composable_rust_testing::fixtures::{TestKeyPrefix, TestSchema};
use composable_rust_testing::services;
use ops_support::{Tally, config, failure, json, success};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn status_retry_discard_and_reset_on_a_redis_projection_store() {
    let url = services::database_url();
    let schema = TestSchema::new();
    let prefix = TestKeyPrefix::new();
    let events = PostgresEventStore::connect(&url)
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();
    events.migrate().await.unwrap();
    for (stream, kind) in [("a-1", "ok"), ("a-2", "poison"), ("a-3", "poison")] {
        events
            .append(
                &StreamId::new(stream).unwrap(),
                ExpectedVersion::NoStream,
                vec![NewEvent::new(kind, json!({}))],
            )
            .await
            .unwrap();
    }
    let store = Arc::new(
        RedisProjectionStore::connect(prefix.url(), prefix.as_str())
            .await
            .unwrap(),
    );
    let fixed = Arc::new(AtomicBool::new(false));
    let manager = ProjectionManager::builder(
        Tally::new(Arc::clone(&fixed)),
        Arc::clone(&store),
        events.clone(),
    )
    .with_config(config())
    .build();
    manager.catch_up().await.unwrap();
    let letters = manager.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 2);
    let (first, second) = (
        letters[0].event.event_id.to_string(),
        letters[1].event.event_id.to_string(),
    );

    let args = |command: &[&'static str]| -> Vec<String> {
        let mut all: Vec<String> = command.iter().map(|s| (*s).to_owned()).collect();
        for option in [
            "--database-url",
            &url,
            "--schema",
            schema.name(),
            "--redis-url",
            prefix.url(),
            "--key-prefix",
            prefix.as_str(),
        ] {
            all.push(option.to_owned());
        }
        all
    };
    let run = |command: &[&'static str], extra: &[&str]| -> Vec<String> {
        let mut all = args(command);
        all.splice(
            command.len()..command.len(),
            extra.iter().map(|s| (*s).to_owned()),
        );
        all
    };

    let status = json(&refs(&args(&["projections", "status", "--format", "json"])));
    assert_eq!(status[0]["projection"], "tally");
    assert_eq!(status[0]["events_behind"], 0);
    assert_eq!(status[0]["dead_letters"], 2);
    let listed = json(&refs(&args(&["dead-letters", "list", "--format", "json"])));
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // Retry the first after the fix; discard the second.
    fixed.store(true, Ordering::SeqCst);
    success(&refs(&run(&["dead-letters", "retry"], &["tally", &first])));
    let listed = json(&refs(&args(&["dead-letters", "list", "--format", "json"])));
    assert_eq!(listed[0]["retry_requested"], true);
    success(&refs(&run(
        &["dead-letters", "discard"],
        &["tally", &second],
    )));
    manager.catch_up().await.unwrap();
    assert!(manager.dead_letters().await.unwrap().is_empty());
    assert_eq!(store.get_json::<u64>("tally:a-2").await.unwrap(), Some(1));
    assert_eq!(store.get_json::<u64>("tally:a-3").await.unwrap(), None);

    // A reset rebuilds: now every event counts once, the discarded one too.
    success(&refs(&run(&["checkpoint", "reset"], &["tally"])));
    manager.catch_up().await.unwrap();
    for stream in ["a-1", "a-2", "a-3"] {
        assert_eq!(
            store
                .get_json::<u64>(&format!("tally:{stream}"))
                .await
                .unwrap(),
            Some(1)
        );
    }

    let error = failure(&refs(&run(&["dead-letters", "retry"], &["tally", &first])));
    assert!(error.contains("[CR-E0307]"), "{error}");
}

fn refs(all: &[String]) -> Vec<&str> {
    all.iter().map(String::as_str).collect()
}
