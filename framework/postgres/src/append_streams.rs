//! Appending to several streams in one transaction
//! ([`EventStore::append_to_streams`](composable_rust_core::EventStore::append_to_streams)).
//!
//! Each share runs the same statement as a single append (see the
//! `append` module), in the order given, inside one transaction: the
//! shares' rows get one transaction id, so they sit next to each other in
//! the global order and become readable together, when the transaction
//! commits. The first share whose stream is not at its expected version
//! ends the transaction (rolled back, so nothing is written) and is
//! reported; the actual version is read after the rollback, on the same
//! connection.
//!
//! Two such transactions naming the same streams in opposite orders would
//! each insert a key the other then waits for: a deadlock, which
//! PostgreSQL breaks only after its `deadlock_timeout` (1 s by default),
//! while both transactions hold back every reader of the global order
//! (see `Statements::read_all`). So a transaction of two streams or more
//! first takes an advisory lock per stream, in one order for everyone
//! ([`Statements::lock_streams`](crate::sql::Statements::lock_streams)):
//! transactions over overlapping streams take turns instead. A single
//! append holds no other stream's key while it waits, so it cannot close
//! a cycle. Should a deadlock happen anyway (SQLSTATE 40P01: a user's own
//! transaction in the cycle), the aborted try runs again from the start,
//! as does one whose share expecting `Any` lost the race for its next
//! version: it then writes, or meets the other's rows as an ordinary
//! conflict.

use composable_rust_core::event_store::{StreamAppend, check_stream_appends};
use composable_rust_core::{AppendOutcome, EventStoreError, ExpectedVersion, StreamId};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::append::{
    ANY_PAUSE_AFTER, Check, Columns, OPERATION, any_pause, duplicate_id, execute, outcome_of,
    refused_payload, violated_constraint,
};
use crate::sql::{EVENT_ID_KEY, STREAM_VERSION_KEY};
use crate::store::PostgresEventStore;

/// SQLSTATE of a transaction PostgreSQL aborted to break a deadlock.
const DEADLOCK_DETECTED: &str = "40P01";

/// One share, ready to bind.
struct Share {
    stream_id: StreamId,
    check: Check,
    columns: Columns,
}

/// Why one try of the transaction wrote nothing.
enum Failure {
    /// Share `index`'s stream is not at its expected version.
    Conflict(usize),
    /// Another transaction won a race this one can run again after.
    LostRace,
    /// Share `index`'s statement (or the transaction itself, `None`)
    /// failed.
    Failed(Option<usize>, sqlx::Error),
    /// A statement's result could not be read.
    Unreadable(EventStoreError),
}

/// Writes every share of `appends` in one transaction, or none.
pub(crate) async fn append_to_streams(
    store: &PostgresEventStore,
    appends: Vec<StreamAppend>,
) -> Result<Vec<AppendOutcome>, EventStoreError> {
    check_stream_appends(&appends, store.max_payload_bytes())?;
    let shares = appends
        .into_iter()
        .map(|share| {
            Ok(Share {
                check: Check::new(share.expected, None),
                stream_id: share.stream_id,
                columns: Columns::new(share.events)?,
            })
        })
        .collect::<Result<Vec<_>, EventStoreError>>()?;
    store.check_transaction_ids_once().await?;
    let mut connection = store
        .pool()
        .acquire()
        .await
        .map_err(|error| store.error(error, OPERATION))?;

    let mut lost_races = 0u32;
    loop {
        let failure = match try_once(&mut connection, store, &shares).await {
            Ok(outcomes) => {
                store.notifier().bump();
                return Ok(outcomes);
            }
            Err(failure) => failure,
        };
        match failure {
            Failure::LostRace => {
                // Each lost race means another transaction committed (or
                // was chosen to go on), so writers as a whole progress.
                lost_races += 1;
                if lost_races >= ANY_PAUSE_AFTER {
                    tokio::time::sleep(any_pause()).await;
                }
            }
            Failure::Conflict(index) => {
                let share = &shares[index];
                let actual =
                    crate::read::stream_version_with(store, &mut *connection, &share.stream_id)
                        .await?;
                return Err(EventStoreError::WrongExpectedVersion {
                    stream_id: share.stream_id.to_string(),
                    expected: share.check.expected(),
                    actual,
                });
            }
            Failure::Failed(index, error) => {
                return Err(explain(store, &mut connection, &shares, index, error).await);
            }
            Failure::Unreadable(error) => return Err(error),
        }
    }
}

/// One try: begin, every share's statement, commit. On a failure the
/// transaction is rolled back before this returns.
async fn try_once(
    connection: &mut PgConnection,
    store: &PostgresEventStore,
    shares: &[Share],
) -> Result<Vec<AppendOutcome>, Failure> {
    let mut transaction = connection
        .begin()
        .await
        .map_err(|error| Failure::Failed(None, error))?;
    let mut outcomes = Vec::with_capacity(shares.len());
    let mut failure = None;
    if shares.len() > 1 {
        let streams: Vec<&str> = shares
            .iter()
            .map(|share| share.stream_id.as_str())
            .collect();
        let locked = sqlx::query(&store.sql().lock_streams)
            .bind(&streams)
            .bind(format!("{}.", store.schema()))
            .execute(&mut *transaction)
            .await;
        if let Err(error) = locked {
            failure = Some(Failure::Failed(None, error));
        }
    }
    for (index, share) in shares.iter().enumerate() {
        if failure.is_some() {
            break;
        }
        match execute(
            store,
            &mut transaction,
            &share.stream_id,
            share.check,
            &share.columns,
        )
        .await
        {
            Ok((_, 0, ..)) => {
                failure = Some(Failure::Conflict(index));
                break;
            }
            Ok(row) => match outcome_of(&share.stream_id, share.check.expected(), row) {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => {
                    failure = Some(Failure::Unreadable(error));
                    break;
                }
            },
            Err(error) => {
                failure = Some(classify(share, index, error));
                break;
            }
        }
    }
    match failure {
        None => match transaction.commit().await {
            Ok(()) => Ok(outcomes),
            Err(error) if is_deadlock(&error) => Err(Failure::LostRace),
            Err(error) => Err(Failure::Failed(None, error)),
        },
        Some(failure) => {
            transaction
                .rollback()
                .await
                .map_err(|error| Failure::Failed(None, error))?;
            Err(failure)
        }
    }
}

/// What a failed statement of share `index` means.
fn classify(share: &Share, index: usize, error: sqlx::Error) -> Failure {
    if is_deadlock(&error) {
        return Failure::LostRace;
    }
    if violated_constraint(&error) == Some(STREAM_VERSION_KEY) {
        // Another writer committed the version this share computed. With
        // `Any`, any version will do: the whole transaction runs again.
        return if share.check.expected() == ExpectedVersion::Any {
            Failure::LostRace
        } else {
            Failure::Conflict(index)
        };
    }
    Failure::Failed(Some(index), error)
}

fn is_deadlock(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|database| database.code())
        .is_some_and(|code| code == DEADLOCK_DETECTED)
}

/// The typed error for a statement (or the transaction) that failed,
/// looked into after the rollback: a duplicate event id names the id, a
/// payload PostgreSQL refused names the share's event types.
async fn explain(
    store: &PostgresEventStore,
    connection: &mut PgConnection,
    shares: &[Share],
    index: Option<usize>,
    error: sqlx::Error,
) -> EventStoreError {
    if violated_constraint(&error) == Some(EVENT_ID_KEY) {
        let event_ids: Vec<Uuid> = shares
            .iter()
            .flat_map(|share| share.columns.event_ids.iter().copied())
            .collect();
        return duplicate_id(store, connection, &event_ids, error).await;
    }
    if let Some(index) = index
        && let Some(refused) = refused_payload(&error, &shares[index].columns.event_types)
    {
        return refused;
    }
    store.error(error, OPERATION).into()
}
