//! The core's `ProjectionManager` over a `PostgresEventStore` and a
//! `PostgresProjectionStore` in another schema or another database:
//! catch-up, resume, rebuild, crash and resume exactly once, poison events,
//! and a rebuild while writers keep appending.

use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::{
    EventStore, ExpectedVersion, NewEvent, Position, Projection, ProjectionManager, StoredEvent,
    StreamId,
};
use composable_rust_postgres::{PostgresEventStore, PostgresProjectionStore};
use composable_rust_testing::fixtures::TestDatabase;
use uuid::Uuid;

use super::projection_support::{ReadModel, Tallies, fresh_projection_store, test_config};
use super::support::{self, event, stream};

/// Appends `batches` batches of `size` events to `streams` streams, round
/// robin; returns the last position.
async fn append_events(
    store: &PostgresEventStore,
    streams: &[StreamId],
    batches: usize,
    size: usize,
) -> Position {
    let mut last = Position::START;
    for batch in 0..batches {
        let id = &streams[batch % streams.len()];
        let events = (0..size)
            .map(|i| event((batch * size + i) as u64))
            .collect();
        last = store
            .append(id, ExpectedVersion::Any, events)
            .await
            .expect("append")
            .last_position;
    }
    last
}

/// Catches up until the projection has reached `target`, however the
/// reads are paged (another test's open transaction can hold a page back
/// for a moment); returns how many events were committed.
async fn catch_up_to<P: Projection>(manager: &ProjectionManager<P>, target: Position) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut total = manager.catch_up().await.expect("catch up");
    while manager.position() < target {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck at {}",
            manager.position()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        total += manager.catch_up().await.expect("catch up");
    }
    total
}

/// Rebuilds, then catches up to `target`; returns how many events were
/// committed in all.
async fn rebuild_to<P: Projection>(manager: &ProjectionManager<P>, target: Position) -> u64 {
    let replayed = manager.rebuild().await.expect("rebuild");
    replayed + catch_up_to(manager, target).await
}

async fn all_events(store: &PostgresEventStore) -> Vec<StoredEvent> {
    // Every committed event, even those another test's open transaction
    // holds back for a moment (count_after counts them).
    let mut events: Vec<StoredEvent> = Vec::new();
    loop {
        let after = events
            .last()
            .map_or(Position::START, |event| event.position);
        let page = store.read_all(after, 10_000).await.expect("read all");
        if page.is_empty() {
            if store.count_after(after).await.expect("count") == 0 {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        events.extend(page);
    }
}

fn flagged(flag: &str, n: u64) -> NewEvent {
    NewEvent::new("Happened", serde_json::json!({ "n": n, flag: true }))
}

/// Issue 8, case 2: a key longer than PostgreSQL's btree limit is refused
/// at commit (SQLSTATE 54000, permanent). It used to be treated as
/// transient: retried forever, nothing dead-lettered, no later event
/// applied. Now the event behind it is isolated and dead-lettered.
#[tokio::test]
async fn a_key_postgres_refuses_is_dead_lettered_and_later_events_still_applied() {
    let events = support::fresh_store().await;
    let test = fresh_projection_store().await;
    let projections = Arc::clone(&test.store);
    let id = stream("huge-key");
    let mut batch: Vec<NewEvent> = (0..12).map(event).collect();
    batch[5] = flagged("huge_key", 5);
    let refused = batch[5].event_id;
    let last = events
        .append(&id, ExpectedVersion::NoStream, batch)
        .await
        .unwrap()
        .last_position;

    let manager = ProjectionManager::builder(
        Tallies::new("huge_key", &projections).await,
        Arc::clone(&projections),
        events.store.clone(),
    )
    .with_config(test_config(50))
    .build();
    assert_eq!(catch_up_to(&manager, last).await, 12);
    assert_eq!(manager.position(), last, "the checkpoint moved past it");

    let letters = manager.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].event.event_id, refused);
    assert_eq!(letters[0].attempts, 3);
    assert!(
        letters[0].error.contains("CR-E0109") && letters[0].error.contains("54000")
            || letters[0].error.contains("index row"),
        "the error names PostgreSQL's refusal: {}",
        letters[0].error
    );

    let read_model = ReadModel::of(&projections).await;
    assert_eq!(read_model.applications.len(), 11, "every other event");
    read_model.assert_each_applied_once();
    assert_eq!(read_model.tallies[&format!("tally:{id}")].events, 11);
    assert!(manager.health().is_running());
}

/// Catch-up, resume from the checkpoint with a new manager (as after a
/// restart), and a rebuild that equals the incremental result; with the
/// read model in `projections`, the events elsewhere.
async fn catch_up_resume_and_rebuild(
    events: &PostgresEventStore,
    projections: Arc<PostgresProjectionStore>,
) {
    let streams: Vec<_> = (0..4).map(|i| stream(&format!("tally{i}"))).collect();
    let first = append_events(events, &streams, 12, 25).await;

    let projection = Tallies::new("tallies", &projections).await;
    let manager = ProjectionManager::builder(projection, Arc::clone(&projections), events.clone())
        .with_config(test_config(64))
        .build();
    assert_eq!(catch_up_to(&manager, first).await, 300);
    let read_model = ReadModel::of(&projections).await;
    assert_eq!(read_model, ReadModel::expected(&all_events(events).await));

    // A new manager (a restart) resumes from the checkpoint.
    let last = append_events(events, &streams, 4, 10).await;
    let restarted = ProjectionManager::builder(
        Tallies::new("tallies", &projections).await,
        Arc::clone(&projections),
        events.clone(),
    )
    .with_config(test_config(64))
    .build();
    assert_eq!(
        catch_up_to(&restarted, last).await,
        40,
        "only the new events"
    );
    assert_eq!(restarted.position(), last);
    let incremental = ReadModel::of(&projections).await;
    assert_eq!(incremental, ReadModel::expected(&all_events(events).await));
    incremental.assert_each_applied_once();

    assert_eq!(rebuild_to(&restarted, last).await, 340);
    assert_eq!(ReadModel::of(&projections).await, incremental);
}

#[tokio::test]
async fn a_manager_catches_up_resumes_and_rebuilds_into_another_schema() {
    let events = support::fresh_store().await;
    let projections = fresh_projection_store().await;
    assert_ne!(events.schema(), projections.store.schema());
    catch_up_resume_and_rebuild(&events, Arc::clone(&projections.store)).await;
}

#[tokio::test]
async fn a_manager_keeps_a_read_model_in_a_separate_read_database() {
    let events = support::fresh_store().await;
    let database = TestDatabase::new().await;
    let pool = database.pool().await;
    let projections = PostgresProjectionStore::new(pool.clone())
        .with_schema("read_models")
        .unwrap();
    projections.migrate().await.unwrap();
    catch_up_resume_and_rebuild(&events, Arc::new(projections)).await;

    // The read model really is in the other database, and the event store's
    // database has no projection tables in the event store's schema.
    let database_name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(database_name, database.name());
    let elsewhere: Option<String> = sqlx::query_scalar(&format!(
        "SELECT to_regclass('\"{}\".projection_data')::text",
        events.schema()
    ))
    .fetch_one(events.pool())
    .await
    .unwrap();
    assert_eq!(elsewhere, None);
    pool.close().await;
}

/// The manager task is aborted in the middle of a batch (its projection
/// stalls on an event after applying part of the batch, with SQL of its
/// own already executed in the batch's transaction), twice, and restarted;
/// every event is applied exactly once and the read model equals a rebuild.
/// Holds the exclusive gate: the stalled transaction holds the server's
/// read horizon back.
#[tokio::test]
async fn a_manager_aborted_mid_batch_resumes_without_applying_an_event_twice() {
    let events = support::exclusive_store().await;
    let test = fresh_projection_store().await;
    let projections = Arc::clone(&test.store);
    let streams: Vec<_> = (0..3).map(|i| stream(&format!("crash{i}"))).collect();
    append_events(&events, &streams, 10, 30).await;
    let all = all_events(&events).await;
    assert_eq!(all.len(), 300);

    for (round, stall_at) in [137_usize, 212].into_iter().enumerate() {
        let projection = Tallies::new("crash", &projections).await;
        projection.stall_on(Some(all[stall_at].event_id));
        let manager =
            ProjectionManager::builder(projection, Arc::clone(&projections), events.store.clone())
                .with_config(test_config(50))
                .build();
        let running = manager.start();
        tokio::time::timeout(
            Duration::from_secs(30),
            manager.projection().stalled.notified(),
        )
        .await
        .expect("the projection reaches the stall");
        // Batches of 50: the stall is in the batch after the last commit,
        // part of which was applied in the open transaction.
        let committed = stall_at / 50 * 50;
        assert_eq!(
            manager.position(),
            all[committed - 1].position,
            "round {round}"
        );
        running.abort();
        assert!(running.await.unwrap_err().is_cancelled());

        let after_crash = ReadModel::of(&projections).await;
        assert_eq!(
            after_crash.applications.len(),
            committed,
            "the aborted batch rolled back"
        );
        after_crash.assert_each_applied_once();
    }

    let restarted = ProjectionManager::builder(
        Tallies::new("crash", &projections).await,
        Arc::clone(&projections),
        events.store.clone(),
    )
    .with_config(test_config(50))
    .build();
    let end = all[299].position;
    assert_eq!(catch_up_to(&restarted, end).await, 300 - 200);
    let resumed = ReadModel::of(&projections).await;
    resumed.assert_each_applied_once();
    assert_eq!(resumed, ReadModel::expected(&all));

    rebuild_to(&restarted, end).await;
    assert_eq!(ReadModel::of(&projections).await, resumed);
}

/// One event always fails in the projection, another breaks a constraint
/// of the projection's own table: each is retried, dead-lettered with its
/// error, and every later event is applied. Then the dead letters are
/// listed, one retried after a fix, the other discarded.
#[tokio::test]
async fn poison_events_are_dead_lettered_and_later_events_still_applied() {
    let events = support::fresh_store().await;
    let test = fresh_projection_store().await;
    let projections = Arc::clone(&test.store);
    let id = stream("poison");
    let mut batch: Vec<NewEvent> = (0..20).map(event).collect();
    batch[7] = flagged("poison", 7);
    batch[13] = flagged("bad_sql", 13);
    let poison = batch[7].event_id;
    let bad_sql = batch[13].event_id;
    events
        .append(&id, ExpectedVersion::NoStream, batch)
        .await
        .unwrap();
    let tail = append_events(&events, std::slice::from_ref(&id), 2, 5).await;

    let manager = ProjectionManager::builder(
        Tallies::new("poison", &projections).await,
        Arc::clone(&projections),
        events.store.clone(),
    )
    .with_config(test_config(8))
    .build();
    assert_eq!(catch_up_to(&manager, tail).await, 30);
    assert_eq!(manager.position(), tail);
    assert_eq!(manager.stats().dead_letters, 2);

    let letters = manager.dead_letters().await.unwrap();
    let ids: Vec<Uuid> = letters.iter().map(|l| l.event.event_id).collect();
    assert_eq!(ids, [poison, bad_sql], "oldest first");
    assert!(letters.iter().all(|l| l.attempts == 3), "{letters:?}");
    assert!(
        letters[0].error.contains("is poison"),
        "{}",
        letters[0].error
    );
    assert!(
        letters[1].error.contains("CR-E0109") && letters[1].error.contains("check constraint"),
        "the constraint violation is an apply error: {}",
        letters[1].error
    );
    assert_eq!(letters[0].event.stream_id, id);
    assert_eq!(letters[0].event.payload["poison"], true);

    let read_model = ReadModel::of(&projections).await;
    assert_eq!(
        read_model.applications.len(),
        28,
        "all but the two poison events"
    );
    read_model.assert_each_applied_once();
    assert_eq!(read_model.tallies[&format!("tally:{id}")].events, 28);

    // The rows are in projection_dead_letters with their errors.
    let stored: Vec<(Uuid, String, i64)> = sqlx::query_as(&format!(
        "SELECT event_id, error, attempts FROM \"{}\".projection_dead_letters \
         WHERE projection = 'poison' ORDER BY recorded",
        projections.schema()
    ))
    .fetch_all(projections.pool())
    .await
    .unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].0, poison);
    assert_eq!(stored[0].2, 3);

    // Retry after a fix: applied late, and the letter is gone.
    manager.projection().fix();
    manager.retry_dead_letter(poison).await.unwrap();
    manager.discard_dead_letter(bad_sql).await.unwrap();
    assert_eq!(manager.dead_letters().await.unwrap(), []);
    let read_model = ReadModel::of(&projections).await;
    assert_eq!(read_model.applications.len(), 29);
    assert!(read_model.applications.contains_key(&poison));
    assert!(!read_model.applications.contains_key(&bad_sql));
    let missing = manager.discard_dead_letter(bad_sql).await.unwrap_err();
    assert!(missing.to_string().contains("CR-E0014"), "{missing}");
}

/// Writers append concurrently while the projection is rebuilt (three
/// times, with the manager running); once the writers stop and the manager
/// catches up, the read model equals a fresh rebuild in another store.
#[tokio::test]
async fn a_rebuild_while_writers_keep_appending_converges() {
    let events = support::fresh_store().await;
    let test = fresh_projection_store().await;
    let projections = Arc::clone(&test.store);
    let manager = ProjectionManager::builder(
        Tallies::new("busy", &projections).await,
        Arc::clone(&projections),
        events.store.clone(),
    )
    .with_config(test_config(40))
    .build();
    let running = manager.start();

    let writers: Vec<_> = (0..3)
        .map(|w| {
            let store = events.store.clone();
            tokio::spawn(async move {
                let id = stream(&format!("writer{w}"));
                let mut last = Position::START;
                for batch in 0..40 {
                    let events = (0..5).map(|i| event(batch * 5 + i)).collect();
                    last = store
                        .append(&id, ExpectedVersion::Any, events)
                        .await
                        .expect("append")
                        .last_position;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                last
            })
        })
        .collect();

    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        manager.rebuild().await.unwrap();
    }
    let mut last = Position::START;
    for writer in writers {
        last = last.max(writer.await.unwrap());
    }
    manager
        .wait_for(last, Duration::from_secs(30))
        .await
        .unwrap();
    manager.shutdown();
    running.await.unwrap().unwrap();

    let converged = ReadModel::of(&projections).await;
    converged.assert_each_applied_once();
    let all = all_events(&events).await;
    assert_eq!(all.len(), 600);
    assert_eq!(converged, ReadModel::expected(&all));

    let fresh_test = fresh_projection_store().await;
    let fresh = ProjectionManager::builder(
        Tallies::new("busy", &fresh_test.store).await,
        Arc::clone(&fresh_test.store),
        events.store.clone(),
    )
    .with_config(test_config(40))
    .build();
    rebuild_to(&fresh, last).await;
    assert_eq!(ReadModel::of(&fresh_test.store).await, converged);
}
