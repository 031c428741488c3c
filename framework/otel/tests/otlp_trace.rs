//! One command, one trace: a command sent to a `Store` appends an event,
//! the publisher puts it on the bus, a projection fed by the bus applies it
//! and a saga fed by the bus reacts to it, each in a task of its own. The
//! in-process OTLP receiver must get every span of that path in ONE trace,
//! linked as `composable_rust_core::trace` documents: send -> effect ->
//! append -> publish -> apply, and publish -> saga step -> the saga's
//! append.
//!
//! The OpenTelemetry subscriber and propagator are process-wide, so this
//! file holds one test (its own test binary).

mod receiver;
mod shared;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event_bus::EventBus;
use composable_rust_core::event_bus::{
    EventPublisher, InMemoryEventBus, SubscribeOptions, SubscriptionSource, Topic,
};
use composable_rust_core::projection::ProjectionStoreExt;
use composable_rust_core::saga::{
    CommandDispatcher, DispatchError, Handled, Reaction, Routed, Saga, SagaCommand, SagaContext,
    SagaError, SagaId, SagaRuntime,
};
use composable_rust_core::trace::TRACEPARENT;
use composable_rust_core::{
    Effect, Effects, Event, EventMetadata, EventStore, ExpectedVersion, InMemoryEventStore,
    InMemoryProjectionStore, NewEvent, Position, ProjectionManager, Reducer, Store, StoredEvent,
    StreamId,
};
use composable_rust_otel::{OtelConfig, OtelError};
use receiver::{Received, Receiver};
use shared::{Deposits, hex, one};
use uuid::Uuid;

/// A feature whose command appends one event in an effect.
struct Accounts;

#[derive(Debug, Clone)]
enum Action {
    Deposit { account: String, correlation: Uuid },
}

impl Reducer for Accounts {
    type State = ();
    type Action = Action;
    type Environment = InMemoryEventStore;

    fn reduce(&self, _: &mut (), action: Action, events: &InMemoryEventStore) -> Effects<Action> {
        let Action::Deposit {
            account,
            correlation,
        } = action;
        let events = events.clone();
        vec![Effect::future(async move {
            let stream = StreamId::for_aggregate("account", &account).expect("a stream id");
            let deposited = NewEvent::new("Deposited", serde_json::json!({ "amount": 25 }))
                .with_metadata(EventMetadata {
                    correlation_id: Some(correlation),
                    ..EventMetadata::default()
                });
            events
                .append(&stream, ExpectedVersion::Any, vec![deposited])
                .await
                .expect("append");
            None
        })]
    }
}

/// What the fraud check recorded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Check {
    Started,
}
impl Event for Check {}

/// A saga that starts a fraud check for every deposit.
struct FraudCheck;

impl Saga for FraudCheck {
    const KIND: &'static str = "fraud-check";
    type State = ();
    type Input = ();
    type Event = Check;
    type Command = String;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<()>>, SagaError> {
        let id = SagaId::new(format!("check-{}", event.event_id))?;
        Ok(Some(Routed::new(id, ())))
    }

    fn react(&self, (): &(), (): (), _: &SagaContext) -> Reaction<Self> {
        Reaction::new().record(Check::Started).complete()
    }

    fn apply((): &mut (), _: &Check) {}
}

/// The saga sends no commands.
struct NoCommands;

#[async_trait]
impl CommandDispatcher<String> for NoCommands {
    async fn dispatch(&self, _: &SagaCommand<String>) -> Result<(), DispatchError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_is_one_trace_across_the_bus() {
    let receiver = Receiver::start().await;
    let telemetry = composable_rust_otel::install(
        OtelConfig::new("accounts").with_endpoint(receiver.endpoint.clone()),
    )
    .expect("install");

    // The other side: a projection fed by the bus, in a task of its own
    // with no span around it.
    let events = InMemoryEventStore::new();
    let bus = InMemoryEventBus::new();
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
    // A saga in another "process", with its own event store, fed by the
    // bus through its own consumer group.
    let mut fraud = bus
        .subscribe(SubscribeOptions::new(topic.clone(), "fraud", "fraud-1").unwrap())
        .await
        .unwrap();
    let saga_events = InMemoryEventStore::new();
    let runtime =
        SagaRuntime::builder(FraudCheck, saga_events.clone(), Arc::new(NoCommands)).build();
    let checking = tokio::spawn(async move {
        let messages = fraud.receive(1, Duration::from_secs(10)).await.unwrap();
        for message in &messages {
            let handled = runtime.handle(&message.event).await.unwrap();
            assert!(matches!(handled, Handled::Stepped { .. }), "{handled:?}");
            fraud.ack(message).await.unwrap();
        }
        messages.len()
    });
    let publisher = EventPublisher::new(
        "bus-publisher",
        events.clone(),
        bus.clone(),
        Arc::new(InMemoryProjectionStore::new()),
        topic,
    );
    let publishing = publisher.start();

    let correlation = Uuid::now_v7();
    let store = Store::new((), Accounts, events.clone());
    store
        .send(Action::Deposit {
            account: "7".into(),
            correlation,
        })
        .await
        .unwrap();

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
    assert!(
        read_model
            .get_json::<serde_json::Value>("deposit:account-7")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(checking.await.unwrap(), 1, "the saga got the deposit");
    telemetry.flush().await.expect("flush");

    let spans = receiver.spans();
    let send = one(&spans, "store.send");
    let effect = one(&spans, "store.effect");
    // The deposit's append, then the saga runtime's (its step and its
    // catalog of running sagas).
    let (deposit, saga_appends): (Vec<&Received>, Vec<&Received>) = spans
        .iter()
        .filter(|span| span.name == "event_store.append")
        .partition(|span| span.attribute("stream_id") == Some("account-7"));
    assert_eq!(deposit.len(), 1, "{deposit:#?}");
    assert!(!saga_appends.is_empty(), "the saga appended nothing");
    let append = deposit[0];
    let publish = one(&spans, "bus.publish");
    let apply = one(&spans, "projection.apply");
    let step = one(&spans, "saga.step");

    // One trace ...
    for span in [effect, append, publish, apply, step]
        .into_iter()
        .chain(saga_appends.iter().copied())
    {
        assert_eq!(
            hex(&span.trace_id),
            hex(&send.trace_id),
            "`{}` is not in the command's trace",
            span.name
        );
    }
    // ... linked as documented.
    assert!(send.parent_span_id.is_empty(), "store.send is the root");
    assert_eq!(effect.parent_span_id, send.span_id);
    assert_eq!(append.parent_span_id, effect.span_id);
    assert_eq!(publish.parent_span_id, append.span_id, "across the store");
    assert_eq!(apply.parent_span_id, publish.span_id, "across the bus");
    assert_eq!(step.parent_span_id, publish.span_id, "across the bus");
    for saga_append in &saga_appends {
        assert_eq!(
            saga_append.parent_span_id,
            step.span_id,
            "{:?}",
            saga_append.attribute("stream_id")
        );
    }

    // The stored event carries the append's context; the bus copy the
    // publish's.
    let traceparent = &stored.metadata.headers[TRACEPARENT];
    assert_eq!(
        traceparent,
        &format!("00-{}-{}-01", hex(&append.trace_id), hex(&append.span_id))
    );

    // The documented fields.
    assert_eq!(append.attribute("stream_id"), Some("account-7"));
    assert_eq!(append.attribute("event_type"), Some("Deposited"));
    assert_eq!(
        append.attribute("correlation_id"),
        Some(&*correlation.to_string())
    );
    assert_eq!(
        append.attribute("last_position"),
        Some(&*stored.position.to_string())
    );
    assert_eq!(publish.attribute("topic"), Some("accounts"));
    assert_eq!(
        publish.attribute("event_id"),
        Some(&*stored.event_id.to_string())
    );
    assert_eq!(apply.attribute("projection"), Some("deposits"));
    assert_eq!(
        apply.attribute("position"),
        Some(&*stored.position.to_string())
    );
    assert_eq!(
        apply.attribute("correlation_id"),
        Some(&*correlation.to_string())
    );
    assert_eq!(step.attribute("saga"), Some("fraud-check"));
    assert_eq!(step.attribute("event_type"), Some("Deposited"));
    assert_eq!(
        step.attribute("saga_id"),
        Some(&*format!("check-{}", stored.event_id))
    );
    assert!(spans.iter().all(|span| span.service == "accounts"));
    assert!(
        receiver
            .requests()
            .iter()
            .all(|r| r == "POST /v1/traces application/x-protobuf"),
        "{:?}",
        receiver.requests()
    );

    // Installing twice is refused, and changes nothing.
    let again = composable_rust_otel::install(OtelConfig::new("again"));
    assert!(matches!(again, Err(OtelError::AlreadyInstalled { .. })));

    publisher.shutdown();
    manager.shutdown();
    publishing.await.unwrap().unwrap();
    consumer.await.unwrap().unwrap();
    telemetry.shutdown().await.expect("shutdown");
}
