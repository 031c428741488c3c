//! Events copied from another server with their transaction ids (what a
//! logical dump and restore produces) are detected: `migrate()`, the first
//! read and the first append fail with `CR-E0114` instead of readers
//! silently never delivering them. The runbook's renumbering SQL (the files
//! in `sql/`, included in the book as they are run here) repairs the
//! store, keeping the events' order.

use composable_rust_core::{
    CodedError, ErrorClass, EventStore, EventStoreError, ExpectedVersion, Position, StreamId,
};
use composable_rust_postgres::{PostgresError, PostgresEventStore};
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

use super::support::{self, TestStore, database_url, event, stream};

/// The runbook's query that compares stored transaction ids with the
/// server's.
const CHECK_SQL: &str = include_str!("sql/check_transaction_ids.sql");
/// The runbook's renumbering of positions.
const RENUMBER_SQL: &str = include_str!("sql/renumber_positions.sql");

/// A connection whose `search_path` is the test's schema, as the runbook
/// asks the reader to set it (`SET search_path TO composable_rust`).
async fn psql(store: &TestStore) -> PgConnection {
    let mut connection = PgConnection::connect(&database_url())
        .await
        .expect("connect");
    sqlx::raw_sql(&format!("SET search_path TO \"{}\"", store.schema()))
        .execute(&mut connection)
        .await
        .expect("set search_path");
    connection
}

/// The runbook's check: (newest stored transaction id, next on this
/// server), read as text like psql shows them.
async fn check(connection: &mut PgConnection) -> (Option<u64>, u64) {
    let row = sqlx::raw_sql(CHECK_SQL)
        .fetch_one(&mut *connection)
        .await
        .expect("the runbook's check runs");
    // The simple protocol returns text, as psql prints it.
    let newest: Option<String> = row.try_get_unchecked(0).expect("newest_stored");
    let next: String = row.try_get_unchecked(1).expect("next_on_this_server");
    (
        newest.map(|text| text.parse().expect("a number")),
        next.parse().expect("a number"),
    )
}

/// The next transaction id the server will assign.
async fn next_transaction_id(store: &TestStore) -> i64 {
    sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8")
        .fetch_one(store.pool())
        .await
        .expect("xmax")
}

fn assert_ahead(error: &PostgresError, schema: &str) {
    assert_eq!(error.code().as_str(), "CR-E0114");
    assert_eq!(error.class(), ErrorClass::Configuration);
    let PostgresError::TransactionIdsAhead {
        schema: reported,
        stored,
        next,
    } = error
    else {
        panic!("expected TransactionIdsAhead, got {error:?}");
    };
    assert_eq!(reported, schema);
    assert!(stored >= next, "{stored} < {next}");
    let message = error.to_string();
    for part in [
        "[CR-E0114] ",
        &format!("written by transaction {stored}"),
        "copied from another server",
        "pg_basebackup",
        "Moving an event store between servers",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

fn backend(error: &EventStoreError) -> &PostgresError {
    let EventStoreError::Backend(backend) = error else {
        panic!("expected a backend error, got {error:?}");
    };
    backend
        .downcast_ref::<PostgresError>()
        .expect("a PostgresError")
}

#[tokio::test]
async fn events_with_transaction_ids_ahead_of_the_server_are_reported_and_renumbered() {
    let store = support::fresh_store().await;
    let streams: Vec<StreamId> = (0..3).map(|i| stream(&format!("moved{i}"))).collect();
    let mut ids = Vec::new();
    for id in &streams {
        let event = event(ids.len() as u64);
        ids.push(event.event_id);
        store
            .append(id, ExpectedVersion::NoStream, vec![event])
            .await
            .expect("append");
    }

    // A "restore" from a server whose transaction ids are a billion ahead,
    // where the events committed in another order than their sequences:
    // the second, the third, then the first.
    let ahead = next_transaction_id(&store).await + 1_000_000_000;
    let update = format!(
        "UPDATE \"{}\".events SET transaction_id = $1::int8::text::xid8 WHERE event_id = $2",
        store.schema()
    );
    for (event_id, offset) in ids.iter().zip([30, 10, 20]) {
        sqlx::query(&update)
            .bind(ahead + offset)
            .bind(event_id)
            .execute(store.pool())
            .await
            .expect("move a row ahead");
    }

    // migrate() says what happened and what to do.
    let error = store.migrate().await.expect_err("migrate detects it");
    assert_ahead(&error, store.schema());

    // So do the first read and the first append of a store that did not
    // migrate (another process).
    let other = PostgresEventStore::new(support::pool().await)
        .with_schema(store.schema())
        .expect("schema");
    let error = other
        .read_all(Position::START, 10)
        .await
        .expect_err("the first read detects it");
    assert_ahead(backend(&error), store.schema());
    let error = other
        .append(&stream("new"), ExpectedVersion::Any, vec![event(9)])
        .await
        .expect_err("the first append detects it");
    assert_ahead(backend(&error), store.schema());
    assert_eq!(other.count_after(Position::START).await.expect("count"), 3);

    // The runbook's check shows it too.
    let mut connection = psql(&store).await;
    let (newest, next) = check(&mut connection).await;
    assert!(newest.expect("events stored") >= next);

    // The runbook's renumbering repairs it.
    sqlx::raw_sql(RENUMBER_SQL)
        .execute(&mut connection)
        .await
        .expect("the runbook's renumbering runs");
    let (newest, next) = check(&mut connection).await;
    assert!(newest.expect("events stored") < next);
    connection.close().await.expect("close");

    store
        .migrate()
        .await
        .expect("migrate passes after renumbering");
    let fresh = PostgresEventStore::new(support::pool().await)
        .with_schema(store.schema())
        .expect("schema");
    let events = fresh.read_all(Position::START, 10).await.expect("read all");
    let order: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
    assert_eq!(
        order,
        [ids[1], ids[2], ids[0]],
        "the restored order is kept"
    );
    assert!(
        events
            .windows(2)
            .all(|pair| pair[0].position < pair[1].position)
    );

    // New events sort after the renumbered ones, and readers get them.
    let outcome = fresh
        .append(&streams[0], ExpectedVersion::Exact(1), vec![event(3)])
        .await
        .expect("append after renumbering");
    assert!(outcome.first_position > events[2].position);
    let after = fresh
        .read_all(events[2].position, 10)
        .await
        .expect("read the new event");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].position, outcome.first_position);
}

#[tokio::test]
async fn a_single_row_far_ahead_fails_migrate_and_an_empty_store_passes() {
    let store = support::fresh_store().await;
    store.check_transaction_ids().await.expect("empty store");
    store
        .append(&stream("ok"), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .expect("append");
    store
        .migrate()
        .await
        .expect("events of this server are behind it");

    let insert = format!(
        "INSERT INTO \"{}\".events \
         (transaction_id, event_id, stream_id, stream_version, event_type, schema_version, payload) \
         VALUES ($1::int8::text::xid8, $2, 'restored-1', 1, 'Happened', 1, '{{}}')",
        store.schema()
    );
    sqlx::query(&insert)
        .bind(next_transaction_id(&store).await + 4_000_000_000)
        .bind(Uuid::new_v4())
        .execute(store.pool())
        .await
        .expect("insert a row far ahead");
    let error = store.migrate().await.expect_err("migrate detects it");
    assert_ahead(&error, store.schema());
    let error = store
        .check_transaction_ids()
        .await
        .expect_err("the check detects it");
    assert_ahead(&error, store.schema());
}
