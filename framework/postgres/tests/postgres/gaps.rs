//! No skipped events: a catch-up reader against writers whose transactions
//! commit out of order; the plain-sequence reader that does skip; and a
//! reader held back by a transaction that ends without a notification.
//!
//! These tests keep transactions open on purpose, so they take the
//! exclusive gate (see `support`): the read horizon is server-wide.

use std::collections::HashSet;
use std::time::Duration;

use composable_rust_core::{EventStore, EventStoreError, ExpectedVersion, Position, StreamId};
use composable_rust_postgres::PostgresEventStore;
use sqlx::{Acquire, PgPool};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};
use uuid::Uuid;

use super::support::{self, event, stream};

/// How long the writers write.
const WRITE_FOR: Duration = Duration::from_secs(3);
/// The readers' page sizes: `read_all` reads a page of 1,000 or more with
/// a binary `COPY`, a smaller one with a prepared statement; the stress
/// follows with one reader on each path.
const PAGES: [usize; 2] = [100, 1_000];
/// After the last commit, how long the reader may go without reading
/// anything new before it gives up (and the test reports what it missed).
const STALL: Duration = Duration::from_secs(3);

/// A tiny deterministic generator (xorshift), one per task.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What a holder of open transactions did.
#[derive(Default)]
struct Held {
    committed: Vec<Uuid>,
    rolled_back: usize,
    /// Held transactions that a higher sequence committed past while they
    /// were open: each one is a gap a plain-sequence reader could skip.
    overtaken: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_catch_up_reader_sees_every_event_once_in_order_while_commits_land_out_of_order() {
    let store = support::exclusive_store().await;
    let store: &PostgresEventStore = &store;
    let shared: Vec<StreamId> = (0..16).map(|i| stream(&format!("shared{i}"))).collect();
    let deadline = Instant::now() + WRITE_FOR;

    let (total_tx, total_rx) = watch::channel(None);
    let readers: Vec<_> = PAGES
        .map(|page| {
            (
                page,
                tokio::spawn(follow(store.clone(), total_rx.clone(), page)),
            )
        })
        .into();

    let writers: Vec<_> = (0..6u64)
        .map(|w| {
            let (store, shared) = (store.clone(), shared.clone());
            tokio::spawn(write(
                store,
                shared,
                deadline,
                Rng(0x9E37_79B9 + w),
                w % 2 == 0,
            ))
        })
        .collect();
    let holders: Vec<_> = (0..3u64)
        .map(|h| {
            let (pool, schema) = (store.pool().clone(), store.schema().to_owned());
            tokio::spawn(hold(pool, schema, deadline, Rng(0xC0FF_EE00 + h)))
        })
        .collect();

    let mut committed = Vec::new();
    for writer in writers {
        committed.extend(writer.await.expect("writer task"));
    }
    let (mut rolled_back, mut overtaken) = (0, 0);
    for holder in holders {
        let held = holder.await.expect("holder task");
        committed.extend(held.committed);
        rolled_back += held.rolled_back;
        overtaken += held.overtaken;
    }
    total_tx.send_replace(Some(committed.len()));
    let committed_set: HashSet<_> = committed.iter().copied().collect();
    assert_eq!(committed_set.len(), committed.len(), "ids are unique");
    for (page, reader) in readers {
        let seen = timeout(Duration::from_secs(30), reader)
            .await
            .expect("the reader must catch up within 30 s of the last commit")
            .expect("reader task");
        let seen_set: HashSet<_> = seen.iter().copied().collect();
        let missed = committed_set.difference(&seen_set).count();
        let phantom = seen_set.difference(&committed_set).count();
        assert_eq!(
            (missed, phantom),
            (0, 0),
            "the reader with pages of {page} must see every committed event and nothing \
             else ({} committed, {} seen)",
            committed.len(),
            seen.len()
        );
        assert_eq!(seen.len(), committed.len(), "each event exactly once");
    }
    // The scenario must really have committed out of order, or it proves
    // nothing.
    assert!(
        overtaken > 0,
        "no held transaction was overtaken by a later commit; the test did not exercise gaps"
    );
    eprintln!(
        "gap stress: {} events committed and all seen once, in order; {overtaken} held \
         transactions were overtaken by later commits, {rolled_back} rolled back",
        committed.len(),
    );
}

/// Appends small batches to random shared streams until `deadline`; with
/// `exact`, at the version it last read (and loses some races), otherwise
/// at any version. Returns the ids of the events it committed.
async fn write(
    store: PostgresEventStore,
    streams: Vec<StreamId>,
    deadline: Instant,
    mut rng: Rng,
    exact: bool,
) -> Vec<Uuid> {
    let mut committed = Vec::new();
    while Instant::now() < deadline {
        let id = &streams[rng.below(streams.len() as u64) as usize];
        let batch: Vec<_> = (0..=rng.below(3)).map(event).collect();
        let ids: Vec<_> = batch.iter().map(|e| e.event_id).collect();
        let expected = if exact {
            ExpectedVersion::Exact(store.stream_version(id).await.expect("version"))
        } else {
            ExpectedVersion::Any
        };
        match store.append(id, expected, batch).await {
            Ok(_) => committed.extend(ids),
            Err(EventStoreError::WrongExpectedVersion { .. }) if exact => {}
            Err(error) => panic!("append failed: {error}"),
        }
    }
    committed
}

/// Until `deadline`: opens a transaction, inserts one or two events into
/// its own stream with plain SQL, keeps the transaction open for a while
/// (so it holds low positions while others commit higher ones), then
/// commits, or every fifth time rolls back.
async fn hold(pool: PgPool, schema: String, deadline: Instant, mut rng: Rng) -> Held {
    let insert = format!(
        "INSERT INTO \"{schema}\".events \
         (event_id, stream_id, stream_version, event_type, schema_version, payload) \
         VALUES ($1, $2, $3, 'Held', 1, '{{}}') RETURNING sequence"
    );
    let max_committed = format!("SELECT max(sequence) FROM \"{schema}\".events");
    let stream_id = stream("held");
    let mut version = 0i64;
    let mut held = Held::default();
    let mut round = 0;
    while Instant::now() < deadline {
        round += 1;
        let mut connection = pool.acquire().await.expect("connection");
        let mut transaction = connection.begin().await.expect("begin");
        let mut ids = Vec::new();
        let mut lowest = i64::MAX;
        for n in 0..=rng.below(2) as i64 {
            let event_id = Uuid::new_v4();
            let sequence: i64 = sqlx::query_scalar(&insert)
                .bind(event_id)
                .bind(stream_id.as_str())
                .bind(version + n + 1)
                .fetch_one(&mut *transaction)
                .await
                .expect("held insert");
            lowest = lowest.min(sequence);
            ids.push(event_id);
        }
        sleep(Duration::from_millis(20 + rng.below(180))).await;
        let newest: Option<i64> = sqlx::query_scalar(&max_committed)
            .fetch_one(&pool)
            .await
            .expect("max sequence");
        if round % 5 == 0 {
            transaction.rollback().await.expect("rollback");
            held.rolled_back += 1;
            continue;
        }
        transaction.commit().await.expect("commit");
        if newest.is_some_and(|newest| newest > lowest) {
            held.overtaken += 1;
        }
        version += ids.len() as i64;
        held.committed.extend(ids);
    }
    held
}

/// Follows `read_all` from the start, woken by `subscribe()`, until it has
/// seen as many events as `total` says were committed (or, once the
/// writers are done, reads nothing new for [`STALL`]). Checks as it goes
/// that positions strictly increase and no event comes twice.
async fn follow(
    store: PostgresEventStore,
    mut total: watch::Receiver<Option<usize>>,
    page_size: usize,
) -> Vec<Uuid> {
    let mut changes = store.subscribe();
    let mut after = Position::START;
    let mut seen = Vec::new();
    let mut ids = HashSet::new();
    let mut stalled_since = Instant::now();
    loop {
        changes.borrow_and_update();
        let page = store.read_all(after, page_size).await.expect("read_all");
        for event in &page {
            assert!(
                event.position > after,
                "position {} came after {after}",
                event.position
            );
            after = event.position;
            assert!(
                ids.insert(event.event_id),
                "event {} seen twice",
                event.event_id
            );
            seen.push(event.event_id);
        }
        if page.len() == page_size {
            continue;
        }
        let writers_done = total.borrow().is_some();
        if total.borrow().is_some_and(|total| seen.len() >= total) {
            return seen;
        }
        if writers_done && page.is_empty() && stalled_since.elapsed() > STALL {
            // Nothing new for a while after the last commit: report what
            // was seen and let the test name what is missing.
            return seen;
        }
        if !page.is_empty() {
            stalled_since = Instant::now();
        }
        // Sleep until an append, a held-back recheck or the writers' end.
        tokio::select! {
            changed = changes.changed() => changed.expect("the store keeps its notifier"),
            changed = total.changed() => {
                changed.expect("the test keeps the total's sender");
                stalled_since = Instant::now();
            }
            () = sleep(STALL), if writers_done => {}
        }
    }
}

/// Asserts that `read_all` from the start returns nothing, on both read
/// paths ([`PAGES`]): every committed event is held back.
async fn assert_held_back(store: &PostgresEventStore) {
    for page in PAGES {
        let events = store.read_all(Position::START, page).await.unwrap();
        assert!(events.is_empty(), "held back (pages of {page}): {events:?}");
    }
}

/// The hazard itself, deterministically: a transaction takes a low
/// sequence and stays open while a higher one commits. A reader that
/// orders by the plain sequence reads the higher one, moves past the
/// lower one and never sees it; `read_all` waits and sees both, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_by_the_plain_sequence_skips_an_event_read_all_does_not() {
    let store = support::exclusive_store().await;
    let events = format!("\"{}\".events", store.schema());
    let plain_read =
        format!("SELECT sequence, event_id FROM {events} WHERE sequence > $1 ORDER BY sequence");

    // A: a low sequence, not committed yet.
    let mut slow = store.pool().begin().await.unwrap();
    let slow_id = Uuid::new_v4();
    let slow_sequence: i64 = sqlx::query_scalar(&format!(
        "INSERT INTO {events} (event_id, stream_id, stream_version, event_type, schema_version, \
         payload) VALUES ($1, 'slow-1', 1, 'Slow', 1, '{{}}') RETURNING sequence"
    ))
    .bind(slow_id)
    .fetch_one(&mut *slow)
    .await
    .unwrap();

    // B: a higher sequence, committed.
    let fast = event(1);
    let fast_id = fast.event_id;
    store
        .append(&stream("fast"), ExpectedVersion::NoStream, vec![fast])
        .await
        .unwrap();

    // The plain reader sees B and moves its cursor past A's sequence.
    let first: Vec<(i64, Uuid)> = sqlx::query_as(&plain_read)
        .bind(0i64)
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(first.iter().map(|r| r.1).collect::<Vec<_>>(), [fast_id]);
    let cursor = first[0].0;
    assert!(cursor > slow_sequence);
    // read_all returns nothing yet: B is held back behind the open A.
    assert_held_back(&store).await;

    slow.commit().await.unwrap();

    // A is committed, but the plain reader has moved past it: skipped.
    let second: Vec<(i64, Uuid)> = sqlx::query_as(&plain_read)
        .bind(cursor)
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert!(second.is_empty(), "the plain reader never sees A");
    // read_all sees both, A first.
    for page in [10, 1_000] {
        let all = store.read_all(Position::START, page).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            [slow_id, fast_id],
            "pages of {page}"
        );
    }
}

/// A reader held back by a transaction that writes nothing to the event
/// store and rolls back (so no NOTIFY ever comes) is still woken, by the
/// recheck `read_all` schedules, and then reads the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_held_back_by_a_transaction_that_ends_silently_is_woken() {
    let store = support::exclusive_store().await;
    let mut changes = store.subscribe();
    timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("the listener starts")
        .unwrap();

    // An unrelated writing transaction (it gets a transaction id).
    let mut other = store.pool().begin().await.unwrap();
    sqlx::query("CREATE TEMPORARY TABLE unrelated (x int)")
        .execute(&mut *other)
        .await
        .unwrap();

    let appended = event(1);
    let appended_id = appended.event_id;
    store
        .append(
            &stream("held-back"),
            ExpectedVersion::NoStream,
            vec![appended],
        )
        .await
        .unwrap();
    // Let the append's own wake-ups (local and NOTIFY) arrive and clear them.
    sleep(Duration::from_millis(200)).await;
    // Held back behind the open transaction.
    assert_held_back(&store).await;
    changes.borrow_and_update();
    other.rollback().await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        timeout(remaining, changes.changed())
            .await
            .expect("a held-back reader must be woken without any new append")
            .unwrap();
        let page = store.read_all(Position::START, 10).await.unwrap();
        if !page.is_empty() {
            assert_eq!(page[0].event_id, appended_id);
            let bulk = store.read_all(Position::START, 1_000).await.unwrap();
            assert_eq!(bulk.len(), 1, "the bulk path reads it too");
            break;
        }
    }
}

/// A held-back read waits for the events committed when it began, not for
/// those committed while it waits: under a steady stream of writes some
/// transaction is always in flight, and a read that waited for a clear
/// horizon would return only when its wait ran out (a second), which is
/// what made a projection's lag p99 a quarter of a second under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_back_read_returns_once_it_has_what_was_committed_when_it_began() {
    let store = support::exclusive_store().await;
    // A writing transaction (it has a transaction id) holds the horizon;
    // B commits behind it.
    let mut older = store.pool().begin().await.unwrap();
    sqlx::query("CREATE TEMPORARY TABLE older (x int)")
        .execute(&mut *older)
        .await
        .unwrap();
    let before = event(1);
    let before_id = before.event_id;
    store
        .append(&stream("before"), ExpectedVersion::NoStream, vec![before])
        .await
        .unwrap();

    let reader = tokio::spawn({
        let store = store.store.clone();
        async move { store.read_all(Position::START, 100).await }
    });
    // The reader is waiting for B (its first read found it held back).
    sleep(Duration::from_millis(100)).await;
    assert!(!reader.is_finished(), "B is held back behind the open A");

    // Meanwhile another transaction starts, and E commits behind it: the
    // horizon will not clear while the test holds it.
    let mut newer = store.pool().begin().await.unwrap();
    sqlx::query("CREATE TEMPORARY TABLE newer (x int)")
        .execute(&mut *newer)
        .await
        .unwrap();
    let during = event(2);
    let during_id = during.event_id;
    store
        .append(&stream("during"), ExpectedVersion::NoStream, vec![during])
        .await
        .unwrap();

    older.rollback().await.unwrap();
    let ended = Instant::now();
    let read = timeout(Duration::from_secs(5), reader)
        .await
        .expect("the read returns")
        .unwrap()
        .unwrap();
    let waited = ended.elapsed();
    assert_eq!(
        read.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        [before_id],
        "B, and not E, which is still held back"
    );
    // The read's own wait runs out a second after it began (900 ms after
    // A ended); it returned as soon as B was readable.
    assert!(
        waited < Duration::from_millis(400),
        "the read waited {waited:?} after B became readable"
    );

    newer.rollback().await.unwrap();
    let all = store.read_all(Position::START, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        [before_id, during_id]
    );
}

/// The store stays usable from many tasks at once (a smoke check that the
/// shared state is `Send + Sync` and cheap to clone).
#[test]
fn the_store_is_send_sync_and_clone() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<PostgresEventStore>();
}

/// A bulk page (read by `COPY`) whose reader is dropped half-way, as when
/// a projection manager or a rebuild is stopped, must not leave the rest
/// of the `COPY` on a pooled connection: the next statement on that
/// connection would read it as its own answer. The pool here has one
/// connection, so every read after the drop reuses it (or its
/// replacement).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_read_dropped_half_way_leaves_the_pool_usable() {
    let store = support::fresh_store().await;
    let id = stream("dropped");
    for chunk in 0..5 {
        let batch = (0..1_000).map(|n| event(chunk * 1_000 + n)).collect();
        store
            .append(&id, ExpectedVersion::Any, batch)
            .await
            .expect("append");
    }
    let one = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&support::database_url())
        .await
        .expect("a pool of one connection");
    let narrow = PostgresEventStore::new(one)
        .with_schema(store.schema())
        .expect("valid schema");
    for cut in [0, 1, 2, 5] {
        let read = narrow.read_all(Position::START, 5_000);
        // Dropped at its first await, or a few milliseconds in (mid-COPY).
        let _ = timeout(Duration::from_millis(cut), read).await;
        for page in [10, 5_000] {
            let events = narrow
                .read_all(Position::START, page)
                .await
                .unwrap_or_else(|error| {
                    panic!("after a drop at {cut} ms, pages of {page}: {error}")
                });
            assert_eq!(events.len(), page, "after a drop at {cut} ms");
        }
    }
}

/// "Everything" is a valid page size on both read paths.
#[tokio::test]
async fn a_page_size_beyond_any_store_reads_everything() {
    let store = support::fresh_store().await;
    let id = stream("everything");
    store
        .append(&id, ExpectedVersion::Any, (0..3).map(event).collect())
        .await
        .expect("append");
    let mine = |events: Vec<composable_rust_core::StoredEvent>| {
        events.into_iter().filter(|e| e.stream_id == id).count()
    };
    for limit in [u64::MAX as usize, i64::MAX as usize, 1_000_000] {
        let events = store.read_all(Position::START, limit).await.expect("read");
        assert_eq!(mine(events), 3, "limit {limit}");
    }
}
