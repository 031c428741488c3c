//! Listing 38-1: wiring a service's health checks and its graceful
//! shutdown. Everything runs in memory here; in production the event
//! store, the read model and the bus are PostgreSQL and Redis, and their
//! checks (`PostgresHealthCheck`, `RedisHealthCheck`) join the readiness
//! probe.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use composable_rust::event_bus::{EventBus, SubscribeOptions, Subscription, Topic};
use composable_rust::health::{EventBusCheck, HealthRegistry, ProjectionCheck};
use composable_rust::projection::{ProjectionTx, ProjectionTxExt};
use composable_rust::shutdown::{CancellationToken, ShutdownError, ShutdownGroup, ShutdownReport};
use composable_rust::{
    EventPublisher, InMemoryEventBus, InMemoryEventStore, InMemoryProjectionStore, Projection,
    ProjectionError, ProjectionManager, ProjectionStore, StoredEvent, async_trait,
};

/// Counts the events of the store.
#[derive(Debug)]
pub struct EventCount;

#[async_trait]
impl Projection for EventCount {
    type Store = InMemoryProjectionStore;

    fn name(&self) -> &str {
        "event-count"
    }

    async fn apply(
        &self,
        _: &StoredEvent,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        let count: u64 = tx.get_json("count").await?.unwrap_or(0);
        tx.save_json("count", &(count + 1)).await
    }

    async fn reset(
        &self,
        tx: &mut <Self::Store as ProjectionStore>::Tx,
    ) -> Result<(), ProjectionError> {
        tx.delete("count").await
    }
}

/// The running parts of the service.
#[derive(Debug)]
pub struct Service {
    /// What the probes ask.
    pub health: HealthRegistry,
    /// Every runner, in the order they stop.
    pub runners: ShutdownGroup,
    /// The projection, for tests.
    pub projection: ProjectionManager<EventCount>,
    /// Messages the consumer handled and acknowledged.
    pub notified: Arc<AtomicU64>,
}

// ANCHOR: start
/// Starts the runners and registers each with the health checks and the
/// shutdown group.
pub async fn start(
    events: InMemoryEventStore,
    bus: InMemoryEventBus,
) -> Result<Service, Box<dyn std::error::Error>> {
    let topic = Topic::new("events")?;
    let read_model = Arc::new(InMemoryProjectionStore::new());

    // Intake first, then what follows the event store: each stops after
    // the ones before it.
    let publisher = EventPublisher::new(
        "publisher",
        events.clone(),
        bus.clone(),
        Arc::clone(&read_model),
        topic.clone(),
    );
    let projection = ProjectionManager::new(EventCount, read_model, events);
    let mut runners = ShutdownGroup::new();
    // (a `Store` taking commands would be registered here, first)
    runners.add("publisher", publisher.clone());
    runners.add("projection:event-count", projection.clone());
    // Their tasks run on their own: the group waits for them to stop, and
    // the liveness probe notices a projection that stopped on its own.
    drop(publisher.start());
    drop(projection.start());

    // A bus consumer of our own: it watches its token between batches.
    let options = SubscribeOptions::new(topic.clone(), "notifier", "notifier-1")?;
    let subscription = bus.subscribe(options).await?;
    let notified = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&notified);
    runners.spawn("consumer:notifier", move |token| {
        consume(subscription, counter, token)
    });

    let health = HealthRegistry::new()
        .with_timeout(Duration::from_secs(1))
        // Liveness: restart the process if the projection has stopped.
        .with_liveness(ProjectionCheck::alive(projection.clone()))
        // Readiness: serve only while the bus answers and the read model
        // is at most 1000 events behind.
        .with_readiness(EventBusCheck::new(bus, topic))
        .with_readiness(ProjectionCheck::lag(projection.clone(), 1_000));

    Ok(Service {
        health,
        runners,
        projection,
        notified,
    })
}
// ANCHOR_END: start

// ANCHOR: consume
/// Receives, handles and acknowledges batches until `token` is cancelled.
/// The token is only looked at between batches: a batch received is always
/// handled and acknowledged, so nothing is acknowledged unprocessed.
async fn consume(
    mut subscription: Box<dyn Subscription>,
    notified: Arc<AtomicU64>,
    token: CancellationToken,
) {
    while !token.is_cancelled() {
        let received = tokio::select! {
            () = token.cancelled() => break,
            received = subscription.receive(100, Duration::from_millis(250)) => received,
        };
        let Ok(messages) = received else { continue };
        for _message in &messages {
            notified.fetch_add(1, Ordering::Relaxed); // send the e-mail, idempotently
        }
        // Unacknowledged (a crash, an abort at the deadline): delivered again.
        let _ = subscription.ack_many(&messages).await;
    }
}
// ANCHOR_END: consume

// ANCHOR: run
/// Runs until `stop` completes (Ctrl-C in `main`), then stops every runner
/// within one deadline.
pub async fn run_until(
    service: Service,
    stop: impl Future<Output = ()>,
    deadline: Duration,
) -> Result<ShutdownReport, ShutdownError> {
    stop.await;
    service.runners.shutdown(deadline).await
}

/// What `main` passes as `stop`.
pub async fn ctrl_c() {
    // An error means no signal handler could be installed: stop at once.
    let _ = tokio::signal::ctrl_c().await;
}
// ANCHOR_END: run
