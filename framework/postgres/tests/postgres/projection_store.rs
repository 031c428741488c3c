//! `PostgresProjectionStore` on its own: key/value semantics, units of work
//! (own writes, rollback on drop), prefix deletes with LIKE wildcards in
//! the prefix, checkpoints, dead letters, migrations (alone and sharing a
//! schema with the event store), and error codes.

use chrono::{TimeZone, Utc};
use composable_rust_core::projection::{
    DeadLetter, Delivery, ProjectionCheckpoint, ProjectionStore, ProjectionStoreExt, ProjectionTx,
    ProjectionTxExt,
};
use composable_rust_core::{
    CodedError, EventMetadata, EventStore, ExpectedVersion, Position, ProjectionError, StoredEvent,
    StreamId,
};
use composable_rust_postgres::{PostgresError, PostgresEventStore, PostgresProjectionStore};
use sqlx::PgPool;
use uuid::Uuid;

use composable_rust_testing::fixtures::TestSchema;

use super::projection_support::fresh_projection_store;
use super::support::{self, event, stream};

#[tokio::test]
async fn values_can_be_saved_read_replaced_and_deleted() {
    let _gate = support::shared_gate().await;
    let test = fresh_projection_store().await;
    let store = &test.store;
    assert_eq!(store.delivery(), Delivery::ExactlyOnce);

    assert_eq!(store.get("a").await.unwrap(), None);
    assert!(!store.exists("a").await.unwrap());
    store.save("a", b"1").await.unwrap();
    store.save("a", b"2").await.unwrap();
    store.save("b", &[0, 255, 7]).await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get("b").await.unwrap(), Some(vec![0, 255, 7]));
    assert!(store.exists("a").await.unwrap());

    store.delete("a").await.unwrap();
    store.delete("never-there").await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), None);

    let mut tx = store.begin().await.unwrap();
    tx.save_json("json", &serde_json::json!({"x": [1, 2]}))
        .await
        .unwrap();
    store.commit(tx).await.unwrap();
    let value: serde_json::Value = store.get_json("json").await.unwrap().unwrap();
    assert_eq!(value, serde_json::json!({"x": [1, 2]}));
    let error = store.get_json::<u32>("json").await.unwrap_err();
    assert!(
        matches!(error, ProjectionError::Serialization { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_unit_of_work_sees_its_own_writes_and_nobody_else_does_until_commit() {
    let _gate = support::shared_gate().await;
    let test = fresh_projection_store().await;
    let store = &test.store;
    store.save("kept", b"old").await.unwrap();
    store.save("gone", b"old").await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.save("kept", b"new").await.unwrap();
    tx.save("added", b"new").await.unwrap();
    tx.delete("gone").await.unwrap();
    assert_eq!(tx.get("kept").await.unwrap(), Some(b"new".to_vec()));
    assert_eq!(tx.get("added").await.unwrap(), Some(b"new".to_vec()));
    assert_eq!(tx.get("gone").await.unwrap(), None);
    // After the buffered writes went out, the transaction still sees them.
    tx.flush().await.unwrap();
    assert_eq!(tx.get("kept").await.unwrap(), Some(b"new".to_vec()));
    assert_eq!(tx.get("gone").await.unwrap(), None);
    // Its own SQL sees them too: it is the same transaction.
    let schema = store.schema().to_owned();
    let rows: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{schema}\".projection_data WHERE data = 'new'"
    ))
    .fetch_one(tx.connection().await.unwrap())
    .await
    .unwrap();
    assert_eq!(rows, 2);

    // Others see the committed values only.
    assert_eq!(store.get("kept").await.unwrap(), Some(b"old".to_vec()));
    assert_eq!(store.get("added").await.unwrap(), None);
    assert_eq!(store.get("gone").await.unwrap(), Some(b"old".to_vec()));

    store.commit(tx).await.unwrap();
    assert_eq!(store.get("kept").await.unwrap(), Some(b"new".to_vec()));
    assert_eq!(store.get("added").await.unwrap(), Some(b"new".to_vec()));
    assert_eq!(store.get("gone").await.unwrap(), None);
}

#[tokio::test]
async fn dropping_a_unit_of_work_rolls_everything_back() {
    let _gate = support::shared_gate().await;
    let test = fresh_projection_store().await;
    let store = &test.store;
    store.save("a", b"committed").await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.save("a", b"rolled back").await.unwrap();
    tx.save("b", b"rolled back").await.unwrap();
    tx.flush().await.unwrap(); // even writes already sent to PostgreSQL
    tx.delete_prefix("").await.unwrap();
    store
        .save_position(&mut tx, "p", Position::new(5, 5))
        .await
        .unwrap();
    drop(tx);

    assert_eq!(store.get("a").await.unwrap(), Some(b"committed".to_vec()));
    assert_eq!(store.get("b").await.unwrap(), None);
    assert_eq!(store.load_position("p").await.unwrap(), None);
    // The connection went back to the pool clean: the next unit of work works.
    store.save("c", b"1").await.unwrap();
    assert_eq!(store.get("c").await.unwrap(), Some(b"1".to_vec()));
}

#[tokio::test]
async fn delete_prefix_treats_like_wildcards_as_ordinary_characters() {
    let _gate = support::shared_gate().await;
    let test = fresh_projection_store().await;
    let store = &test.store;
    let keys = [
        "a%b:1",
        "a%b:2",
        "axb:1", // % must not match any character
        "a_b:1",
        "acb:1", // _ must not match one character
        "a\\b:1",
        "a\\\\b:1", // \ is not an escape
        "é:1",
        "é:2",
        "f:1", // non-ASCII
        "z\u{10FFFF}:1",
        "z\u{10FFFF}", // the largest code point
    ];
    for key in keys {
        store.save(key, b"x").await.unwrap();
    }

    let mut tx = store.begin().await.unwrap();
    tx.save("a%b:3", b"buffered").await.unwrap();
    assert_eq!(tx.delete_prefix("a%b:").await.unwrap(), 2);
    assert_eq!(
        tx.get("a%b:3").await.unwrap(),
        None,
        "buffered writes go too"
    );
    assert_eq!(tx.delete_prefix("a_b").await.unwrap(), 1);
    assert_eq!(tx.delete_prefix("a\\b").await.unwrap(), 1);
    assert_eq!(tx.delete_prefix("é").await.unwrap(), 2);
    assert_eq!(tx.delete_prefix("z\u{10FFFF}").await.unwrap(), 2);
    assert_eq!(tx.delete_prefix("nothing").await.unwrap(), 0);
    tx.save("é:3", b"after").await.unwrap();
    store.commit(tx).await.unwrap();

    let left: Vec<String> = store
        .scan_prefix("")
        .await
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(left, ["a\\\\b:1", "acb:1", "axb:1", "f:1", "é:3"]);
    assert_eq!(store.scan_prefix("a%").await.unwrap(), []);
    assert_eq!(store.scan_prefix("a").await.unwrap().len(), 3);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.delete_prefix("").await.unwrap(), 5, "empty prefix: all");
    store.commit(tx).await.unwrap();
    assert_eq!(store.scan_prefix("").await.unwrap(), []);
}

#[tokio::test]
async fn keys_postgres_cannot_hold_are_refused_as_apply_errors() {
    let _gate = support::shared_gate().await;
    let test = fresh_projection_store().await;
    let store = &test.store;
    let mut tx = store.begin().await.unwrap();
    let error = tx.save("a\0b", b"x").await.unwrap_err();
    assert!(matches!(error, ProjectionError::Apply { .. }), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!(tx.get("a\0b").await.unwrap(), None);
    store.commit(tx).await.unwrap();
}

#[tokio::test]
async fn checkpoints_move_forwards_or_back_to_the_start() {
    let _gate = support::shared_gate().await;
    let test = fresh_projection_store().await;
    let store = &test.store;
    assert_eq!(store.load_position("p").await.unwrap(), None);

    let save = |position| async move {
        let mut tx = store.begin().await?;
        store.save_position(&mut tx, "p", position).await?;
        store.commit(tx).await
    };
    save(Position::new(10, 3)).await.unwrap();
    save(Position::new(10, 4)).await.unwrap();
    save(Position::new(11, 1)).await.unwrap();
    assert_eq!(
        store.load_position("p").await.unwrap(),
        Some(Position::new(11, 1))
    );
    // Another manager committing an overlapping batch is refused...
    let error = save(Position::new(11, 1)).await.unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0113", "{error}");
    assert!(error.is_transient(), "the manager reloads and carries on");
    assert!(
        error
            .to_string()
            .contains("one ProjectionManager per projection")
    );
    save(Position::new(10, 9)).await.unwrap_err();
    // ...but a rebuild may go back to the start.
    save(Position::START).await.unwrap();
    assert_eq!(
        store.load_position("p").await.unwrap(),
        Some(Position::START)
    );
    // Positions beyond a bigint are refused, never wrapped.
    let error = save(Position::new(u64::MAX, 1)).await.unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0112", "{error}");
    assert_eq!(store.load_position("other").await.unwrap(), None);
}

fn dead_letter(projection: &str, n: u64) -> DeadLetter {
    DeadLetter {
        projection: projection.to_owned(),
        event: StoredEvent::builder(
            "OrderPlaced",
            serde_json::json!({ "n": n, "nested": { "ok": true } }),
        )
        .with_stream(StreamId::new("order-1").unwrap(), n)
        .with_position(Position::new(100, n))
        .with_schema_version(2)
        .with_metadata(EventMetadata {
            correlation_id: Some(Uuid::new_v4()),
            ..EventMetadata::default()
        })
        .with_recorded_at(Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap())
        .build(),
        error: format!("failure {n}"),
        attempts: 5,
        // Whole microseconds: PostgreSQL's timestamp precision.
        failed_at: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 6).unwrap(),
    }
}

#[tokio::test]
async fn dead_letters_round_trip_complete_in_order_and_can_be_removed() {
    let _gate = support::shared_gate().await;
    let test = fresh_projection_store().await;
    let store = &test.store;
    let (first, second, other) = (
        dead_letter("p", 1),
        dead_letter("p", 2),
        dead_letter("q", 3),
    );

    let mut tx = store.begin().await.unwrap();
    for letter in [&first, &second, &other] {
        store.record_dead_letter(&mut tx, letter).await.unwrap();
    }
    assert_eq!(store.dead_letters("p").await.unwrap(), [], "not committed");
    store.commit(tx).await.unwrap();
    assert_eq!(
        store.dead_letters("p").await.unwrap(),
        [first.clone(), second.clone()]
    );
    assert_eq!(store.dead_letters("q").await.unwrap(), [other]);

    // Recording one again replaces it and moves it to the end.
    let again = DeadLetter {
        error: "failed again".into(),
        attempts: 7,
        ..first.clone()
    };
    let mut tx = store.begin().await.unwrap();
    store.record_dead_letter(&mut tx, &again).await.unwrap();
    store.commit(tx).await.unwrap();
    assert_eq!(
        store.dead_letters("p").await.unwrap(),
        [second.clone(), again.clone()]
    );

    let mut tx = store.begin().await.unwrap();
    assert!(
        store
            .remove_dead_letter(&mut tx, "p", first.event.event_id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_dead_letter(&mut tx, "p", first.event.event_id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_dead_letter(&mut tx, "q", second.event.event_id)
            .await
            .unwrap()
    );
    store.commit(tx).await.unwrap();
    assert_eq!(store.dead_letters("p").await.unwrap(), [second]);

    // The whole event is in the table, as JSON.
    let stream: String = sqlx::query_scalar(&format!(
        "SELECT event->>'stream_id' FROM \"{}\".projection_dead_letters WHERE projection = 'q'",
        store.schema()
    ))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(stream, "order-1");
}

#[tokio::test]
async fn without_migrations_every_operation_says_to_call_migrate() {
    let _gate = support::shared_gate().await;
    let schema = TestSchema::new();
    let store = PostgresProjectionStore::new(support::pool().await)
        .with_schema(schema.name())
        .unwrap();

    let check = |error: ProjectionError| {
        assert_eq!(error.code().as_str(), "CR-E0107", "{error:?}");
        let text = error.to_string();
        assert!(text.starts_with("[CR-E0107] "), "{text}");
        assert!(
            text.contains("PostgresProjectionStore::migrate()"),
            "{text}"
        );
        assert!(text.contains(schema.name()), "{text}");
        assert_eq!(
            error.class(),
            composable_rust_core::ErrorClass::Configuration
        );
    };
    check(store.get("a").await.unwrap_err());
    check(store.save("a", b"1").await.unwrap_err());
    check(store.load_position("p").await.unwrap_err());
    check(store.dead_letters("p").await.unwrap_err());
    check(store.scan_prefix("a").await.unwrap_err());

    store.migrate().await.expect("migrate() fixes it");
    store.migrate().await.expect("and is idempotent");
    store.save("a", b"1").await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), Some(b"1".to_vec()));
}

#[tokio::test]
async fn both_stores_migrate_into_one_schema_in_any_order() {
    let _gate = support::shared_gate().await;
    let pool = support::pool().await;
    for projections_first in [true, false] {
        let schema = TestSchema::new();
        let events = PostgresEventStore::new(pool.clone())
            .with_schema(schema.name())
            .unwrap();
        let projections = PostgresProjectionStore::new(pool.clone())
            .with_schema(schema.name())
            .unwrap();
        for _ in 0..2 {
            if projections_first {
                projections.migrate().await.unwrap();
                events.migrate().await.unwrap();
            } else {
                events.migrate().await.unwrap();
                projections.migrate().await.unwrap();
            }
        }
        let versions: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT version FROM {}._sqlx_migrations ORDER BY version",
            schema.quoted()
        ))
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(versions, [1, 2, 10001, 10002]);

        let id = stream("shared");
        events
            .append(&id, ExpectedVersion::NoStream, vec![event(1)])
            .await
            .unwrap();
        projections.save("k", b"v").await.unwrap();
        assert_eq!(events.load_stream(&id, 0).await.unwrap().len(), 1);
        assert_eq!(projections.get("k").await.unwrap(), Some(b"v".to_vec()));
    }
}

#[tokio::test]
async fn invalid_schema_names_are_rejected_and_an_unreachable_server_is_transient() {
    let pool = PgPool::connect_lazy(&support::database_url()).unwrap();
    for bad in [
        "",
        "Read",
        "read-models",
        "x\"; DROP SCHEMA public; --",
        "pg_x",
    ] {
        let error = PostgresProjectionStore::new(pool.clone())
            .with_schema(bad)
            .unwrap_err();
        assert!(
            matches!(error, PostgresError::InvalidSchemaName { .. }),
            "{error:?}"
        );
        assert_eq!(error.code().as_str(), "CR-E0101");
    }
    assert_eq!(
        PostgresProjectionStore::new(pool).schema(),
        composable_rust_postgres::DEFAULT_SCHEMA
    );

    // A lazy pool on a closed port (nothing listens on port 1; connect(url)
    // would retry for sqlx's 30-second acquire timeout): the trait methods
    // report CR-E0102 as a transient backend error (the manager retries).
    let dead = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(300))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let store = PostgresProjectionStore::new(dead);
    let error = store.begin().await.unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0102", "{error}");
    assert!(error.is_transient());
}
