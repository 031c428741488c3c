//! The same trace as `otlp_trace.rs`, over the production backends: the
//! event lands in PostgreSQL, travels on Redis Streams, and the projection
//! on the other side still continues the command's trace. The trace
//! context has to survive both the store's metadata column and the bus's
//! wire format. A commit to two streams is one span, whose context both
//! streams' events carry.

mod receiver;
mod shared;

use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::event_bus::{
    EventBus, EventPublisher, SubscribeOptions, SubscriptionSource, Topic,
};
use composable_rust_core::event_store::StreamAppend;
use composable_rust_core::trace::TRACEPARENT;
use composable_rust_core::{
    Effect, Effects, EventStore, ExpectedVersion, InMemoryProjectionStore, NewEvent, Position,
    ProjectionManager, Reducer, Store, StreamId,
};
use composable_rust_otel::OtelConfig;
use composable_rust_postgres::PostgresEventStore;
use composable_rust_redis::RedisStreamsEventBus;
use composable_rust_testing::fixtures::{TestKeyPrefix, TestSchema};
use receiver::Receiver;
use shared::{Deposits, hex, one};
use tracing::Instrument;

/// A command that appends one event in an effect.
struct Accounts;

impl Reducer for Accounts {
    type State = ();
    type Action = &'static str;
    type Environment = PostgresEventStore;

    fn reduce(
        &self,
        _: &mut (),
        account: &'static str,
        events: &PostgresEventStore,
    ) -> Effects<&'static str> {
        let events = events.clone();
        vec![Effect::future(async move {
            let stream = StreamId::for_aggregate("account", account).expect("a stream id");
            let deposited = NewEvent::new("Deposited", serde_json::json!({ "amount": 25 }));
            events
                .append(&stream, ExpectedVersion::Any, vec![deposited])
                .await
                .expect("append");
            None
        })]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_crosses_postgres_and_redis_streams() {
    let receiver = Receiver::start().await;
    let telemetry = composable_rust_otel::install(
        OtelConfig::new("accounts").with_endpoint(receiver.endpoint.clone()),
    )
    .expect("install");

    let schema = TestSchema::new();
    let pool = PostgresEventStore::pool_options()
        .max_connections(4)
        .connect(schema.url())
        .await
        .expect("connect to PostgreSQL");
    let events = PostgresEventStore::new(pool)
        .with_schema(schema.name())
        .expect("schema name");
    events.migrate().await.expect("migrate");
    let prefix = TestKeyPrefix::new();
    let bus = RedisStreamsEventBus::connect(prefix.url(), prefix.as_str())
        .await
        .expect("connect to Redis");

    let topic = Topic::new("accounts").unwrap();
    let subscription = bus
        .subscribe(
            SubscribeOptions::new(topic.clone(), "deposits", "deposits-1")
                .unwrap()
                .with_max_deliveries(u32::MAX),
        )
        .await
        .unwrap();
    let read_model = Arc::new(InMemoryProjectionStore::new());
    let source = SubscriptionSource::new(subscription).with_wait(Duration::from_millis(20));
    let manager = ProjectionManager::new(Deposits, Arc::clone(&read_model), source);
    let consumer = manager.start();
    let publisher = EventPublisher::new(
        "bus-publisher",
        events.clone(),
        bus.clone(),
        Arc::new(InMemoryProjectionStore::new()),
        topic,
    );
    let publishing = publisher.start();

    let store = Store::new((), Accounts, events.clone());
    store.send("7").await.unwrap();

    let appended = events.read_all(Position::START, 10).await.unwrap();
    assert_eq!(appended.len(), 1);
    let stored = &appended[0];
    publisher
        .wait_for(stored.position, Duration::from_secs(10))
        .await
        .unwrap();
    manager
        .wait_for(stored.position, Duration::from_secs(10))
        .await
        .unwrap();
    telemetry.flush().await.expect("flush");

    let spans = receiver.spans();
    let send = one(&spans, "store.send");
    let effect = one(&spans, "store.effect");
    let append = one(&spans, "event_store.append");
    let publish = one(&spans, "bus.publish");
    let apply = one(&spans, "projection.apply");
    for span in [effect, append, publish, apply] {
        assert_eq!(hex(&span.trace_id), hex(&send.trace_id), "{}", span.name);
    }
    assert_eq!(effect.parent_span_id, send.span_id);
    assert_eq!(append.parent_span_id, effect.span_id);
    assert_eq!(publish.parent_span_id, append.span_id, "through PostgreSQL");
    assert_eq!(
        apply.parent_span_id, publish.span_id,
        "through Redis Streams"
    );
    // Read back from PostgreSQL: the append's context.
    assert_eq!(
        stored.metadata.headers[TRACEPARENT],
        format!("00-{}-{}-01", hex(&append.trace_id), hex(&append.span_id))
    );

    assert_eq!(publish.attribute("topic"), Some("accounts"));
    assert_eq!(apply.attribute("stream_id"), Some("account-7"));
    assert!(spans.iter().all(|span| span.service == "accounts"));
    assert!(
        receiver
            .requests()
            .iter()
            .all(|r| r == "POST /v1/traces application/x-protobuf")
    );

    // A commit to two streams: one span, whose context every event of
    // both streams carries.
    let after = appended[0].position;
    let command = tracing::info_span!("transfer");
    let shares = ["account-8", "account-9"].map(|id| {
        StreamAppend::new(
            StreamId::new(id).unwrap(),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Moved", serde_json::json!({ "amount": 5 }))],
        )
    });
    events
        .append_to_streams(shares.into())
        .instrument(command)
        .await
        .unwrap();
    telemetry.flush().await.expect("flush");
    let spans = receiver.spans();
    let transfer = one(&spans, "transfer");
    let commit = one(&spans, "event_store.append_to_streams");
    assert_eq!(commit.parent_span_id, transfer.span_id);
    assert_eq!(commit.attribute("streams"), Some("2"));
    let moved = events.read_all(after, 10).await.unwrap();
    let moved: Vec<_> = moved.iter().filter(|e| e.event_type == "Moved").collect();
    assert_eq!(moved.len(), 2);
    for event in moved {
        assert_eq!(
            event.metadata.headers[TRACEPARENT],
            format!("00-{}-{}-01", hex(&commit.trace_id), hex(&commit.span_id)),
            "{}",
            event.stream_id
        );
    }

    publisher.shutdown();
    manager.shutdown();
    publishing.await.unwrap().unwrap();
    consumer.await.unwrap().unwrap();
    telemetry.shutdown().await.expect("shutdown");
}
