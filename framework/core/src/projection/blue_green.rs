//! The store-independent half of a blue/green rebuild: loading every event
//! into a *new, empty* version of a projection's read model, as fast as the
//! store allows, while the live version keeps serving, and reporting
//! progress and an ETA on the way.
//!
//! A backend owns the other half (where versions live, how readers are
//! switched to the new one, when the old one is dropped): see
//! `composable_rust_postgres::BlueGreen`.
//!
//! [`load_version`] differs from [`ProjectionManager::rebuild`](super::ProjectionManager::rebuild)
//! in three ways, all because nobody reads the version being loaded:
//!
//! - it never resets anything: the version starts empty (or where its own
//!   checkpoint says it stopped);
//! - it reads the next batch while the current one is applied and committed
//!   (a reader task, [`LoadOptions::prefetch`] batches ahead), so reading
//!   and writing overlap; and, on a store whose units of work take turns
//!   ([`ProjectionStore::overlaps_units_of_work`]), it applies the next
//!   batch while the previous one commits;
//! - it is strict: the first event that fails stops the load with a
//!   [`LoadFailure`] naming the event. Dead-lettering it would make the new
//!   version silently differ from the live one, and the point of a
//!   blue/green rebuild is that nothing changes for readers until the new
//!   version is known to be good.
//!
//! Each batch's writes and its checkpoint still commit in one unit of work,
//! so a load killed half-way leaves a version that is consistent with its
//! own checkpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::task::AbortOnDropHandle;
use uuid::Uuid;

use super::Projection;
use super::error::ProjectionError;
use super::source::EventSource;
use super::store::{ProjectionCheckpoint, ProjectionStore};
use crate::event::{Position, StoredEvent};

/// Gauge: events applied to the version being loaded, labelled by
/// `projection` and `version`.
pub const REBUILD_EVENTS_APPLIED: &str = "composable_projection_rebuild_events_applied";
/// Gauge: events the load expects to apply in all (grows if events arrive
/// during the load).
pub const REBUILD_EVENTS_EXPECTED: &str = "composable_projection_rebuild_events_expected";
/// Gauge: events applied per second since the load started.
pub const REBUILD_EVENTS_PER_SECOND: &str = "composable_projection_rebuild_events_per_second";
/// Gauge: seconds left at the current rate, the ETA (0 when done).
pub const REBUILD_SECONDS_LEFT: &str = "composable_projection_rebuild_seconds_left";

/// Every rebuild metric name, for documentation and dashboards.
pub const ALL: &[&str] = &[
    REBUILD_EVENTS_APPLIED,
    REBUILD_EVENTS_EXPECTED,
    REBUILD_EVENTS_PER_SECOND,
    REBUILD_SECONDS_LEFT,
];

/// How far a load has got: what a progress bar renders. Received through
/// the `watch` channel given to [`load_version`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::projection::blue_green::RebuildProgress;
///
/// let progress = RebuildProgress {
///     events_applied: 250_000,
///     events_total: 1_000_000,
///     elapsed: Duration::from_secs(5),
///     ..RebuildProgress::default()
/// };
/// assert_eq!(progress.fraction(), 0.25);
/// assert_eq!(progress.events_per_second(), 50_000.0);
/// assert_eq!(progress.eta(), Some(Duration::from_secs(15)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RebuildProgress {
    /// Events committed to the new version by this load.
    pub events_applied: u64,
    /// Events this load expects in all: those applied plus those still in
    /// the source after the last committed position.
    pub events_total: u64,
    /// Time since the load started.
    pub elapsed: Duration,
    /// The new version's checkpoint.
    pub position: Position,
    /// Whether the load has reached the head of the source.
    pub done: bool,
}

impl RebuildProgress {
    /// The share done, from 0 to 1 (1 when there is nothing to do).
    pub fn fraction(&self) -> f64 {
        if self.events_total == 0 {
            return 1.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let fraction = self.events_applied as f64 / self.events_total as f64;
        fraction.min(1.0)
    }

    /// Events applied per second so far (0 before the first batch).
    pub fn events_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let rate = self.events_applied as f64 / seconds;
        rate
    }

    /// The time left at the rate so far; `None` before there is a rate,
    /// zero when done.
    pub fn eta(&self) -> Option<Duration> {
        if self.done {
            return Some(Duration::ZERO);
        }
        let rate = self.events_per_second();
        if rate <= 0.0 {
            return None;
        }
        let left = self.events_total.saturating_sub(self.events_applied);
        #[allow(clippy::cast_precision_loss)]
        Some(Duration::from_secs_f64(left as f64 / rate))
    }
}

/// What a successful blue/green rebuild did, whatever the backend
/// (`composable_rust_postgres::BlueGreen::rebuild`,
/// `composable_rust_redis::RedisBlueGreen::rebuild`).
#[derive(Debug, Clone, PartialEq)]
pub struct Switched {
    /// The version readers saw before, if any.
    pub from: Option<u32>,
    /// The version they see now.
    pub to: u32,
    /// The new version's checkpoint at the switch.
    pub position: Position,
    /// The load's last progress report (events, time, rate).
    pub progress: RebuildProgress,
}

/// How [`load_version`] reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Events per unit of work (default 5,000: ten times the manager's,
    /// since a bulk-loading store sends a batch's rows in a few statements
    /// whatever its size).
    pub batch_size: usize,
    /// Batches read ahead of the one being applied (default 2).
    pub prefetch: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            batch_size: 5_000,
            prefetch: 2,
        }
    }
}

/// Why [`load_version`] stopped: the error, and the event that caused it
/// when one did (`None` for a failure of the store or the source).
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// What went wrong.
    pub error: ProjectionError,
    /// The event `apply` failed on: its id and position.
    pub event: Option<(Uuid, Position)>,
}

impl From<ProjectionError> for LoadFailure {
    fn from(error: ProjectionError) -> Self {
        Self { error, event: None }
    }
}

/// Applies every event after `store`'s checkpoint for `projection` (from
/// the first event on an empty store) to `store`, batch by batch, until
/// the source has nothing more; returns the position reached.
///
/// `version` labels the metrics. Progress goes to `progress` after every
/// batch, and to the [rebuild metrics](self#constants).
///
/// # Errors
///
/// A [`LoadFailure`]: the first event `apply` refused (nothing of its
/// batch is committed), or the store or source failing.
pub async fn load_version<P: Projection>(
    projection: &P,
    store: &P::Store,
    source: Arc<dyn EventSource>,
    options: LoadOptions,
    version: &str,
    progress: &watch::Sender<RebuildProgress>,
) -> Result<Position, LoadFailure> {
    let name = projection.name();
    let start = store.load_position(name).await?.unwrap_or(Position::START);
    let remaining = source
        .count_after(start)
        .await
        .map_err(ProjectionError::from)?;
    let started = Instant::now();
    let mut state = RebuildProgress {
        events_total: remaining,
        position: start,
        ..RebuildProgress::default()
    };
    report(name, version, progress, state);

    let batch_size = options.batch_size.max(1);
    let (batches, mut incoming) = mpsc::channel(options.prefetch.max(1));
    // The reader runs ahead of the writer; dropping its handle (on return,
    // or when the caller's task is aborted) stops it.
    let _reader =
        AbortOnDropHandle::new(tokio::spawn(read_ahead(source, start, batch_size, batches)));
    let overlap = store.overlaps_units_of_work();
    // The unit of work still committing (when the store lets the next
    // batch be applied meanwhile), with its batch's size and last position.
    let mut committing = None;
    let committed = |state: &mut RebuildProgress, count: usize, last: Position| {
        state.events_applied += count as u64;
        state.events_total = state.events_total.max(state.events_applied);
        state.position = last;
        state.elapsed = started.elapsed();
        report(name, version, progress, *state);
    };
    while let Some(batch) = incoming.recv().await {
        let batch = batch.map_err(ProjectionError::from)?;
        let Some(last) = batch.last().map(|event| event.position) else {
            break;
        };
        let applying = apply_batch(projection, store, &batch, last);
        let tx = match committing.take() {
            Some((commit, count, position)) => {
                // Progress moves as soon as the commit is done, not when
                // the next batch is applied too (an `apply` may wait long).
                let reported = async {
                    commit.await?;
                    committed(&mut state, count, position);
                    Ok::<(), ProjectionError>(())
                };
                let (commit, applied) = tokio::join!(reported, applying);
                commit?;
                applied?
            }
            None => applying.await?,
        };
        if overlap {
            committing = Some((store.commit(tx), batch.len(), last));
        } else {
            store.commit(tx).await?;
            committed(&mut state, batch.len(), last);
        }
    }
    if let Some((commit, count, position)) = committing {
        commit.await?;
        committed(&mut state, count, position);
    }
    state.done = true;
    state.events_total = state.events_applied;
    state.elapsed = started.elapsed();
    report(name, version, progress, state);
    Ok(state.position)
}

/// Reads batches after `after` into `batches` until a read comes back
/// empty or fails (the failure is sent too), or the writer is gone.
async fn read_ahead(
    source: Arc<dyn EventSource>,
    mut after: Position,
    batch_size: usize,
    batches: mpsc::Sender<Result<Vec<StoredEvent>, crate::EventStoreError>>,
) {
    loop {
        let batch = source.read_after(after, batch_size).await;
        let stop = match &batch {
            Ok(events) => match events.last() {
                Some(last) => {
                    after = last.position;
                    false
                }
                None => true,
            },
            Err(_) => true,
        };
        if batches.send(batch).await.is_err() || stop {
            return;
        }
    }
}

/// How many events [`apply_batch`] applies between two yields.
const YIELD_EVERY: usize = 256;

/// Applies `batch` and moves the checkpoint to `last` in a new unit of
/// work, and returns it, to be committed.
async fn apply_batch<P: Projection>(
    projection: &P,
    store: &P::Store,
    batch: &[StoredEvent],
    last: Position,
) -> Result<<P::Store as ProjectionStore>::Tx, LoadFailure> {
    let mut tx = store.begin().await?;
    for (index, event) in batch.iter().enumerate() {
        // Most `apply`s never wait, so a batch would otherwise run to its
        // end in one go: yielding now and then lets the previous batch's
        // commit, polled beside this one, send its rows as soon as the
        // server is ready for them (a store that commits in a task of its
        // own does not need it), so the server works while this applies.
        if index % YIELD_EVERY == YIELD_EVERY - 1 {
            tokio::task::yield_now().await;
        }
        if projection.handles(event) {
            projection
                .apply(event, &mut tx)
                .await
                .map_err(|error| LoadFailure {
                    error,
                    event: Some((event.event_id, event.position)),
                })?;
        }
    }
    store
        .save_position(&mut tx, projection.name(), last)
        .await?;
    Ok(tx)
}

fn report(
    projection: &str,
    version: &str,
    progress: &watch::Sender<RebuildProgress>,
    state: RebuildProgress,
) {
    let labels = [
        ("projection", projection.to_owned()),
        ("version", version.to_owned()),
    ];
    #[allow(clippy::cast_precision_loss)]
    {
        metrics::gauge!(REBUILD_EVENTS_APPLIED, &labels).set(state.events_applied as f64);
        metrics::gauge!(REBUILD_EVENTS_EXPECTED, &labels).set(state.events_total as f64);
    }
    metrics::gauge!(REBUILD_EVENTS_PER_SECOND, &labels).set(state.events_per_second());
    if let Some(eta) = state.eta() {
        metrics::gauge!(REBUILD_SECONDS_LEFT, &labels).set(eta.as_secs_f64());
    }
    progress.send_replace(state);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryEventStore;
    use crate::event::{NewEvent, StreamId};
    use crate::projection::{
        InMemoryProjectionStore, ProjectionStoreExt, ProjectionTx, ProjectionTxExt,
    };
    use crate::{EventStore, ExpectedVersion};
    use async_trait::async_trait;

    /// Counts events per stream; refuses events of type `Poison`.
    struct Counts;

    #[async_trait]
    impl Projection for Counts {
        type Store = InMemoryProjectionStore;
        fn name(&self) -> &str {
            "counts"
        }
        async fn apply(
            &self,
            event: &StoredEvent,
            tx: &mut <Self::Store as ProjectionStore>::Tx,
        ) -> Result<(), ProjectionError> {
            if event.event_type == "Poison" {
                return Err(ProjectionError::apply("poison"));
            }
            let key = format!("count:{}", event.stream_id);
            let count: u64 = tx.get_json(&key).await?.unwrap_or(0);
            tx.save_json(&key, &(count + 1)).await
        }
        async fn reset(
            &self,
            tx: &mut <Self::Store as ProjectionStore>::Tx,
        ) -> Result<(), ProjectionError> {
            tx.delete_prefix("count:").await.map(|_| ())
        }
    }

    async fn events(types: &[&str]) -> InMemoryEventStore {
        let events = InMemoryEventStore::new();
        for (n, kind) in types.iter().enumerate() {
            let stream = StreamId::new(format!("s-{}", n % 3)).unwrap();
            let event = NewEvent::new(*kind, serde_json::json!({}));
            events
                .append(&stream, ExpectedVersion::Any, vec![event])
                .await
                .unwrap();
        }
        events
    }

    #[tokio::test]
    async fn loads_every_event_in_small_batches_and_reports_done() {
        let events = events(&["A"; 10]).await;
        let store = InMemoryProjectionStore::new();
        let (progress, watch) = watch::channel(RebuildProgress::default());
        let options = LoadOptions {
            batch_size: 3,
            prefetch: 1,
        };
        let reached = load_version(&Counts, &store, Arc::new(events), options, "v2", &progress)
            .await
            .unwrap();
        assert_eq!(store.get_json::<u64>("count:s-0").await.unwrap(), Some(4));
        assert_eq!(store.load_position("counts").await.unwrap(), Some(reached));
        let last = *watch.borrow();
        assert!(last.done);
        assert_eq!((last.events_applied, last.events_total), (10, 10));
        assert_eq!(last.eta(), Some(Duration::ZERO));
    }

    #[tokio::test]
    async fn a_poison_event_stops_the_load_naming_it_and_its_batch_is_not_committed() {
        let events = events(&["A", "A", "A", "A", "Poison", "A"]).await;
        let poison = events.read_all(Position::START, 10).await.unwrap()[4].clone();
        let store = InMemoryProjectionStore::new();
        let (progress, _) = watch::channel(RebuildProgress::default());
        let options = LoadOptions {
            batch_size: 2,
            prefetch: 2,
        };
        let failure = load_version(&Counts, &store, Arc::new(events), options, "v2", &progress)
            .await
            .unwrap_err();
        assert_eq!(failure.event, Some((poison.event_id, poison.position)));
        // Batches 1 and 2 (four events) committed; the poison's did not.
        assert_eq!(
            store.get_json::<u64>("count:s-1").await.unwrap(),
            Some(1),
            "the fifth event (stream s-1) was not applied"
        );
        let reached = store.load_position("counts").await.unwrap().unwrap();
        assert!(reached < poison.position);
    }
}
