//! Configuration and failure paths: schema names, missing migrations, an
//! unreachable server, idempotent migrations, schema isolation, and
//! positions that round-trip through `xid8`.

use composable_rust_core::{CodedError, EventStore, EventStoreError, ExpectedVersion, Position};
use composable_rust_postgres::{DEFAULT_SCHEMA, PostgresError, PostgresEventStore};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use composable_rust_testing::fixtures::TestSchema;

use super::support::{self, event, stream};

#[tokio::test]
async fn invalid_schema_names_are_rejected_with_their_code() {
    let pool = PgPool::connect_lazy(&support::database_url()).expect("a valid URL");
    for bad in [
        "",
        "Shop",
        "1shop",
        "shop-1",
        "shop\"; DROP SCHEMA public; --",
        "pg_shop",
    ] {
        let error = PostgresEventStore::new(pool.clone())
            .with_schema(bad)
            .unwrap_err();
        assert!(
            matches!(error, PostgresError::InvalidSchemaName { .. }),
            "{bad}: {error:?}"
        );
        assert_eq!(error.code().as_str(), "CR-E0101");
        assert!(error.to_string().starts_with("[CR-E0101] "), "{error}");
    }
    let store = PostgresEventStore::new(pool.clone())
        .with_schema("shop_1")
        .unwrap();
    assert_eq!(store.schema(), "shop_1");
    assert_eq!(store.notify_channel(), "shop_1_events");
    assert_eq!(PostgresEventStore::new(pool).schema(), DEFAULT_SCHEMA);
}

#[tokio::test]
async fn without_migrations_every_operation_says_to_call_migrate() {
    let _gate = support::shared_gate().await;
    let schema = TestSchema::new();
    let pool = support::pool().await;
    let store = PostgresEventStore::new(pool.clone())
        .with_schema(schema.name())
        .unwrap();
    let id = stream("unmigrated");

    let check = |error: EventStoreError| {
        assert_eq!(error.code().as_str(), "CR-E0103", "{error:?}");
        let text = error.to_string();
        assert!(text.starts_with("[CR-E0103] "), "{text}");
        assert!(text.contains("migrate()"), "{text}");
        assert!(text.contains(schema.name()), "{text}");
    };
    // The schema does not exist yet ...
    check(
        store
            .append(&id, ExpectedVersion::Any, vec![event(1)])
            .await
            .unwrap_err(),
    );
    // ... or exists without the tables.
    schema.create().await.unwrap();
    check(
        store
            .append(&id, ExpectedVersion::Any, vec![event(1)])
            .await
            .unwrap_err(),
    );
    check(store.load_stream(&id, 0).await.unwrap_err());
    check(store.stream_version(&id).await.unwrap_err());
    check(store.read_all(Position::START, 10).await.unwrap_err());
    check(store.load_snapshot(&id).await.unwrap_err());

    store.migrate().await.expect("migrate() fixes it");
    store
        .append(&id, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_reported_with_its_code() {
    // Nothing listens on port 1 of the loopback interface. (connect(url)
    // would retry for sqlx's default 30 s acquire timeout; a pool with a
    // short one fails fast.)
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(300))
        .connect_lazy("postgres://postgres@127.0.0.1:1/postgres")
        .expect("a valid URL");
    let store = PostgresEventStore::new(pool);

    let error = store.migrate().await.unwrap_err();
    assert!(
        matches!(error, PostgresError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("[CR-E0102] "), "{error}");
    assert!(error.to_string().contains("DATABASE_URL="), "{error}");

    let error = store.stream_version(&stream("x")).await.unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0102", "{error:?}");
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let store = support::fresh_store().await;
    store.migrate().await.expect("a second run changes nothing");
    let id = stream("after-remigrate");
    store
        .append(&id, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
}

#[tokio::test]
async fn stores_in_different_schemas_do_not_see_each_other() {
    let (a, b) = (support::fresh_store().await, support::fresh_store().await);
    let id = stream("shared-name");
    a.append(&id, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    b.append(&id, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    assert_eq!(a.stream_version(&id).await.unwrap(), 2);
    assert_eq!(b.stream_version(&id).await.unwrap(), 1);
    assert_eq!(b.read_all(Position::START, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn positions_round_trip_through_the_transaction_id() {
    let store = support::fresh_store().await;
    let id = stream("positions");
    let first = store
        .append(&id, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    let second = store
        .append(&id, ExpectedVersion::Exact(2), vec![event(3)])
        .await
        .unwrap();
    assert_eq!(first.first_position.commit, first.last_position.commit);
    assert!(first.last_position < second.first_position);

    // The commit part is the xid8 PostgreSQL stored, exactly.
    let stored: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT transaction_id::text, sequence FROM \"{}\".events ORDER BY sequence",
        store.schema()
    ))
    .fetch_all(store.pool())
    .await
    .unwrap();
    let positions: Vec<_> = stored
        .iter()
        .map(|(xid, sequence)| Position::new(xid.parse().unwrap(), *sequence as u64))
        .collect();
    assert_eq!(
        positions,
        [
            first.first_position,
            first.last_position,
            second.last_position
        ]
    );

    // Reading after a returned position resumes exactly there.
    let rest = store.read_all(first.last_position, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].position, second.last_position);
    assert!(
        store
            .read_all(second.last_position, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A position beyond anything stored (even beyond i64) reads nothing.
    let far = Position::new(u64::MAX, u64::MAX);
    assert!(store.read_all(far, 10).await.unwrap().is_empty());
}
