//! Sections measuring the aggregate repository on top of the store:
//! single-event commands (load + decide + append) against raw single-row
//! inserts, and loading a 10,050-event stream from a snapshot against
//! loading a 100-event stream without one (in a smoke run, a 150-event
//! stream with a snapshot at 100).

use std::convert::Infallible;

use composable_rust_core::aggregate::AggregateRepository;
use composable_rust_core::event::decode_all;
use composable_rust_core::{
    Aggregate, Event, EventStore, ExpectedVersion, NewEvent, Snapshot, StreamId, Upcasters,
};
use composable_rust_postgres::PostgresEventStore;
use composable_rust_testing::bench;
use serde::{Deserialize, Serialize};

use super::{Side, new_event};

/// The benchmark's events: the shape `new_event` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum OrderEvent {
    /// One order line.
    #[serde(rename = "order.line_added")]
    LineAdded {
        line: u64,
        sku: String,
        quantity: u64,
        unit_price_cents: u64,
        note: String,
    },
}

impl Event for OrderEvent {}

/// An order that sums its lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Order {
    lines: u64,
    total_cents: u64,
}

impl Aggregate for Order {
    const KIND: &'static str = "order";
    type Event = OrderEvent;
    type Command = u64;
    type Error = Infallible;
    type Environment = ();

    fn decide(&self, line: u64, _: &()) -> Result<Vec<OrderEvent>, Infallible> {
        let event = new_event(line);
        let decoded: OrderEvent =
            serde_json::from_value(serde_json::json!({ event.event_type: event.payload }))
                .expect("new_event writes an order.line_added");
        Ok(vec![decoded])
    }

    fn apply(
        &mut self,
        OrderEvent::LineAdded {
            quantity,
            unit_price_cents,
            ..
        }: &OrderEvent,
    ) {
        self.lines += 1;
        self.total_cents += quantity * unit_price_cents;
    }
}

/// `AggregateRepository::execute` of a one-event command, rotating over
/// `streams` orders that grow as the section runs.
pub(crate) struct RepositoryCommand {
    repository: AggregateRepository<Order, PostgresEventStore>,
    streams: Vec<StreamId>,
    next: u64,
}

impl RepositoryCommand {
    /// Over `streams` streams, with a hot-aggregate cache of `hot` entries
    /// (0: none).
    pub(crate) fn new(store: PostgresEventStore, streams: usize, hot: usize) -> Self {
        let repository = AggregateRepository::new(store, ()).with_hot_aggregates(hot);
        let streams = (0..streams)
            .map(|i| repository.stream_id(format!("cmd-{i}")).expect("stream id"))
            .collect();
        Self {
            repository,
            streams,
            next: 0,
        }
    }
}

impl Side for RepositoryCommand {
    async fn once(&mut self) -> u64 {
        let stream = &self.streams[self.next as usize % self.streams.len()];
        self.next += 1;
        self.repository
            .execute(stream, self.next)
            .await
            .expect("command");
        1
    }
}

/// Where the snapshotted stream's snapshot is (a hundredth in a smoke
/// run), and how many events follow it.
const SNAPSHOT_AT: usize = 10_000;
const AFTER_SNAPSHOT: u64 = 50;

/// The snapshot's version in this run.
fn snapshot_at() -> u64 {
    bench::scaled(SNAPSHOT_AT) as u64
}

/// How many events the snapshotted stream holds in this run: 10,050 (150
/// in a smoke run).
pub(crate) fn snapshotted() -> u64 {
    snapshot_at() + AFTER_SNAPSHOT
}

/// Builds a 10,050-event order with a snapshot at version 10,000 (as
/// `SnapshotPolicy::every(100)` would leave it), and a 100-event order
/// without one. Checks that the snapshot-loaded state equals the fully
/// replayed state.
pub(crate) async fn snapshotted_streams(store: &PostgresEventStore) -> (StreamId, StreamId) {
    let long = StreamId::for_aggregate("order", "snapshotted").expect("id");
    let (snapshotted, snapshot_at) = (snapshotted(), snapshot_at());
    for batch in 0..snapshotted.div_ceil(1_000) {
        let end = ((batch + 1) * 1_000).min(snapshotted);
        let events: Vec<NewEvent> = (batch * 1_000..end).map(new_event).collect();
        store
            .append(&long, ExpectedVersion::Exact(batch * 1_000), events)
            .await
            .expect("append the long stream");
    }
    let stored = store.load_stream(&long, 0).await.expect("load");
    let replay = |upto: usize| {
        let mut order = Order::default();
        for event in decode_all::<OrderEvent>(&stored[..upto], &Upcasters::new()).expect("decode") {
            order.apply(&event);
        }
        order
    };
    let snapshot = Snapshot {
        stream_id: long.clone(),
        stream_version: snapshot_at,
        schema_version: Order::SNAPSHOT_VERSION,
        state: serde_json::to_value(replay(snapshot_at as usize)).expect("state"),
        taken_at: chrono::Utc::now(),
    };
    store.save_snapshot(&snapshot).await.expect("snapshot");

    let repository = AggregateRepository::<Order, _>::new(store.clone(), ());
    let loaded = repository.load(&long).await.expect("load with snapshot");
    assert_eq!(loaded.snapshot_version, Some(snapshot_at));
    assert_eq!(loaded.events_replayed, (snapshotted - snapshot_at) as usize);
    assert_eq!(
        loaded.state,
        replay(stored.len()),
        "snapshot + tail must equal a full replay"
    );

    let short = StreamId::for_aggregate("order", "short").expect("id");
    store
        .append(
            &short,
            ExpectedVersion::NoStream,
            (0..100).map(new_event).collect(),
        )
        .await
        .expect("append the short stream");
    (long, short)
}

/// `AggregateRepository::load` of a stream; one unit per load.
pub(crate) struct RepositoryLoad {
    pub repository: AggregateRepository<Order, PostgresEventStore>,
    pub stream: StreamId,
    pub expected_version: u64,
}

impl Side for RepositoryLoad {
    async fn once(&mut self) -> u64 {
        let loaded = self.repository.load(&self.stream).await.expect("load");
        assert_eq!(loaded.version, self.expected_version);
        1
    }
}
