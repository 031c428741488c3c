//! Appending to several streams in one commit
//! ([`EventStore::append_to_streams`](composable_rust_core::EventStore::append_to_streams)).
//!
//! One statement,
//! [`Statements::append_streams`](crate::sql::Statements::append_streams),
//! writes every share: so the commit takes one round trip, and its
//! transaction holds back readers of the global order no longer than a
//! single append's does (a transaction of several statements did, for
//! every round trip between its first insert and its commit: under load,
//! a projection's lag grew with it). Its rows get one transaction id, so
//! they sit next to each other in the global order, in the order given,
//! and become readable together.
//!
//! The statement first takes an advisory lock per stream, in one order
//! for every writer, so two commits over overlapping streams take turns
//! instead of deadlocking. A share whose stream is not at its expected
//! version makes the statement write nothing, and its reply names the
//! share and the stream's version: no second query. A writer that
//! committed between the statement's read of a version and its insert is
//! caught by the primary key (a unique violation); the versions are then
//! read again, and a share expecting another version than its stream's is
//! the conflict. If every share still matches (one expecting any version
//! lost the race for its next one), or PostgreSQL broke a deadlock with a
//! transaction of the caller's own, the statement runs again, this time in
//! a transaction that takes the locks first: a statement's snapshot
//! predates the locks it waits for, so on a stream that every writer
//! shares it could otherwise lose one race after another.

use composable_rust_core::event_store::{StreamAppend, check_stream_appends};
use composable_rust_core::{AppendOutcome, EventStoreError, ExpectedVersion, StreamId};
use sqlx::PgConnection;

use crate::append::{
    ANY_PAUSE_AFTER, Columns, OPERATION, any_pause, duplicate_id, outcome_of, refused_payload,
    violated_constraint,
};
use crate::error::PostgresError;
use crate::rows::{saturating_i64, unsigned};
use crate::sql::{EVENT_ID_KEY, STREAM_VERSION_KEY};
use crate::store::PostgresEventStore;

/// SQLSTATE of a transaction PostgreSQL aborted to break a deadlock.
const DEADLOCK_DETECTED: &str = "40P01";

/// `(share index, head version, rows written, last version, first
/// sequence, last sequence, transaction id)`, one per share, as the
/// statement returns them.
type ShareRow = (
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// Writes every share of `appends` in one statement, or none.
pub(crate) async fn append_to_streams(
    store: &PostgresEventStore,
    appends: Vec<StreamAppend>,
) -> Result<Vec<AppendOutcome>, EventStoreError> {
    check_stream_appends(&appends, store.max_payload_bytes())?;
    let mut streams = Vec::with_capacity(appends.len());
    let mut expected_versions = Vec::with_capacity(appends.len());
    let mut shares = Vec::with_capacity(appends.len());
    let mut share_of_event = Vec::new();
    let mut events = Vec::new();
    for (index, share) in (1_i64..).zip(appends) {
        streams.push(share.stream_id.as_str().to_owned());
        expected_versions.push(match share.expected {
            ExpectedVersion::Any => None,
            ExpectedVersion::NoStream => Some(0),
            ExpectedVersion::Exact(version) => Some(saturating_i64(version)),
        });
        share_of_event.extend(std::iter::repeat_n(index, share.events.len()));
        events.extend(share.events);
        shares.push((share.stream_id, share.expected));
    }
    let columns = Columns::new(events)?;
    let lock_prefix = format!("{}.", store.schema());
    let mut connection = crate::append::connection(store).await?;

    let commit = Commit {
        streams: &streams,
        expected_versions: &expected_versions,
        share_of_event: &share_of_event,
        columns: &columns,
        lock_prefix: &lock_prefix,
    };
    let mut lost_races = 0u32;
    loop {
        let result = if lost_races == 0 {
            commit.run(store, &mut connection).await
        } else {
            commit.run_locked_first(store, &mut connection).await
        };
        let error = match result {
            Ok(rows) => {
                let outcomes = outcomes(&shares, rows)?;
                store.notifier().bump();
                return Ok(outcomes);
            }
            Err(error) => error,
        };
        if is_deadlock(&error) || violated_constraint(&error) == Some(STREAM_VERSION_KEY) {
            if let Some(conflict) = conflict(store, &mut connection, &shares).await? {
                return Err(conflict);
            }
            // Each lost race means another append committed, so writers
            // as a whole progress.
            lost_races += 1;
            if lost_races >= ANY_PAUSE_AFTER {
                tokio::time::sleep(any_pause()).await;
            }
            continue;
        }
        if violated_constraint(&error) == Some(EVENT_ID_KEY) {
            return Err(duplicate_id(store, &mut connection, &columns.event_ids, error).await);
        }
        if let Some(refused) = refused_payload(&error, &columns.event_types) {
            return Err(refused);
        }
        return Err(store.error(error, OPERATION).into());
    }
}

/// One commit's parameters, bound to
/// [`Statements::append_streams`](crate::sql::Statements::append_streams).
struct Commit<'a> {
    streams: &'a [String],
    expected_versions: &'a [Option<i64>],
    share_of_event: &'a [i64],
    columns: &'a Columns,
    lock_prefix: &'a str,
}

impl Commit<'_> {
    /// The statement on its own: one round trip, its own transaction.
    async fn run(
        &self,
        store: &PostgresEventStore,
        connection: &mut PgConnection,
    ) -> Result<Vec<ShareRow>, sqlx::Error> {
        sqlx::query_as::<_, ShareRow>(&store.sql().append_streams)
            .bind(self.streams)
            .bind(self.expected_versions)
            .bind(self.share_of_event)
            .bind(&self.columns.event_ids)
            .bind(&self.columns.event_types)
            .bind(&self.columns.schema_versions)
            .bind(&self.columns.payloads)
            .bind(&self.columns.metadata)
            .bind(self.lock_prefix)
            .fetch_all(connection)
            .await
    }

    /// The statement in a transaction that takes the streams' locks first,
    /// for a commit that lost a race. A statement reads in a snapshot
    /// taken when it starts, so on its own it reads the heads as they were
    /// before it waited for a lock: behind a writer of the same stream it
    /// collides with that writer's rows and has to run again, and on a
    /// stream every writer shares (a saga catalog, say) it could lose
    /// again and again. After the locks, nobody else can append to these
    /// streams through this path, and the statement's snapshot sees every
    /// commit that held them before: it reads the true heads. Three round
    /// trips more, only after a lost race; the transaction gets its id
    /// (which holds readers of the global order back) only at the insert,
    /// so it holds them back one round trip (the commit's) longer than the
    /// statement alone would.
    async fn run_locked_first(
        &self,
        store: &PostgresEventStore,
        connection: &mut PgConnection,
    ) -> Result<Vec<ShareRow>, sqlx::Error> {
        let mut transaction = sqlx::Connection::begin(connection).await?;
        sqlx::query(&store.sql().lock_streams)
            .bind(self.streams)
            .bind(self.lock_prefix)
            .execute(&mut *transaction)
            .await?;
        let rows = self.run(store, &mut transaction).await?;
        transaction.commit().await?;
        Ok(rows)
    }
}

/// The outcome of each share from the statement's rows; when nothing was
/// written, the conflict of the first share (in the order given) whose
/// stream was not at its expected version.
fn outcomes(
    shares: &[(StreamId, ExpectedVersion)],
    rows: Vec<ShareRow>,
) -> Result<Vec<AppendOutcome>, EventStoreError> {
    if rows.len() != shares.len() {
        return Err(PostgresError::corrupt(OPERATION, "a share's row is missing").into());
    }
    if rows.iter().all(|row| row.2 == 0) {
        for ((stream_id, expected), row) in shares.iter().zip(&rows) {
            let actual = unsigned(row.1, "stream_version", OPERATION)?;
            if !expected.accepts(actual) {
                return Err(EventStoreError::WrongExpectedVersion {
                    stream_id: stream_id.to_string(),
                    expected: *expected,
                    actual,
                });
            }
        }
        return Err(PostgresError::corrupt(
            OPERATION,
            "nothing was written, though every stream was at its expected version",
        )
        .into());
    }
    shares
        .iter()
        .zip(rows)
        .map(
            |((stream_id, expected), (_, head, count, last, first, last_sequence, commit))| {
                outcome_of(
                    stream_id,
                    *expected,
                    (head, count, last, first, last_sequence, commit),
                )
            },
        )
        .collect()
}

/// After a lost race: the conflict of the first share expecting a version
/// its stream is no longer at, if any (read on `connection`).
async fn conflict(
    store: &PostgresEventStore,
    connection: &mut PgConnection,
    shares: &[(StreamId, ExpectedVersion)],
) -> Result<Option<EventStoreError>, EventStoreError> {
    for (stream_id, expected) in shares {
        if *expected == ExpectedVersion::Any {
            continue;
        }
        let actual = crate::read::stream_version_with(store, &mut *connection, stream_id).await?;
        if !expected.accepts(actual) {
            return Ok(Some(EventStoreError::WrongExpectedVersion {
                stream_id: stream_id.to_string(),
                expected: *expected,
                actual,
            }));
        }
    }
    Ok(None)
}

fn is_deadlock(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|database| database.code())
        .is_some_and(|code| code == DEADLOCK_DETECTED)
}
