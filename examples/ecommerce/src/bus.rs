//! The event bus between the event store and the checkout saga: the
//! publisher puts every order event on the topic; [`consume`] takes them
//! off, hands each to the saga runtime and acknowledges it once handled.
//! Redis Streams by default, Kafka with `SHOP_BUS=kafka`, in memory for
//! tests; the rest of the shop sees only `Arc<dyn EventBus>`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use composable_rust::event_bus::{BusMessage, Subscription, Topic};
use composable_rust::kafka::KafkaBusOptions;
use composable_rust::prelude::*;
use composable_rust::redis::RedisStreamsEventBus;
use composable_rust::shutdown::CancellationToken;
use composable_rust::{InMemoryEventBus, SagaRuntime};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::checkout::CheckoutSaga;
use crate::config::{BusKind, Config};
use crate::error::ShopError;

/// The topic the order events travel on.
pub const ORDERS_TOPIC: &str = "orders";

/// How many messages one receive takes.
const BATCH: usize = 100;

/// How many orders of a batch are handled at once. More in flight
/// finish the checkouts a little sooner, but take the cores from the
/// requests: at 32, the load test's peak fell from about 700 to about 590
/// orders a second and the p99 at half peak rose from about 25 to 45 ms.
/// Orders reserving the same product take turns on its stock (the stock
/// repository keeps hot aggregates), so they do not conflict.
const PARALLEL_ORDERS: usize = 8;

/// How often commands whose delivery failed are sent again.
const RETRY_PENDING_EVERY: Duration = Duration::from_secs(5);

/// How often the consumer asks the bus for its backlog. The bus sets the
/// gauges `composable_bus_messages_pending` and
/// `composable_bus_consumer_lag_messages` only when asked, so this is how
/// fresh the dashboard's pending and lag figures are.
const REPORT_BACKLOG_EVERY: Duration = Duration::from_secs(2);

/// What the consumer needs to report its group's backlog: the bus and
/// the topic and group it consumes.
#[derive(Clone)]
pub struct Backlog {
    /// The bus.
    pub bus: Arc<dyn EventBus>,
    /// The topic consumed.
    pub topic: Topic,
    /// The consumer group.
    pub group: String,
}

impl std::fmt::Debug for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backlog")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// Asks the bus how many messages the group has pending (delivered, not
/// acknowledged) and not yet delivered: the bus records both as gauges.
/// A failure is logged only: the figures are for the dashboard, and the
/// next report tries again.
async fn report_backlog(subscription: &mut dyn Subscription, backlog: &Backlog) {
    if let Err(error) = backlog.bus.pending(&backlog.topic, &backlog.group).await {
        tracing::debug!(%error, "could not read the bus's pending messages");
    }
    if let Err(error) = subscription.backlog().await {
        tracing::debug!(%error, "could not read the consumer group's lag");
    }
}

/// Connects the bus `config` names.
///
/// # Errors
///
/// [`ShopError::Startup`] with the bus's own error (its `CR-E` code).
pub async fn connect(config: &Config) -> Result<Arc<dyn EventBus>, ShopError> {
    Ok(match &config.bus {
        BusKind::Redis => Arc::new(
            RedisStreamsEventBus::connect(&config.redis_url, &config.redis_prefix)
                .await
                .map_err(|e| ShopError::startup("connect the Redis Streams bus", e))?,
        ),
        BusKind::Kafka { bootstrap } => {
            // Kafka names allow letters, digits, `.`, `_` and `-` only.
            let prefix: String = config
                .redis_prefix
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            Arc::new(
                KafkaBusOptions::new(bootstrap.clone())
                    .with_prefix(format!("{prefix}."))
                    .connect()
                    .await
                    .map_err(|e| ShopError::startup("connect the Kafka bus", e))?,
            )
        }
        BusKind::Memory => Arc::new(InMemoryEventBus::new()),
    })
}

/// The topic of `event`, if it is published: only order events (the
/// saga's input) travel on the bus.
pub fn route(event: &StoredEvent) -> Option<Topic> {
    event
        .stream_id
        .as_str()
        .starts_with("order-")
        .then(|| Topic::new(ORDERS_TOPIC).ok())
        .flatten()
}

/// Feeds the saga from `subscription` until `token` is cancelled.
///
/// A batch is grouped by order: the events of one order are handled in
/// order, one after the other (the saga must see `placed` before
/// `reserved`); different orders concurrently. A message is acknowledged
/// only once handled; after a failure, the rest of that order's messages
/// stay unacknowledged too, and the bus delivers them again, in order.
/// The token is checked between batches only: a batch received is always
/// finished. Every [`REPORT_BACKLOG_EVERY`] (and at once) the group's
/// backlog is reported (see [`Backlog`]).
pub async fn consume(
    mut subscription: Box<dyn Subscription>,
    runtime: SagaRuntime<CheckoutSaga>,
    backlog: Backlog,
    token: CancellationToken,
) {
    let mut last_retry = tokio::time::Instant::now();
    let mut last_report: Option<tokio::time::Instant> = None;
    let permits = Arc::new(Semaphore::new(PARALLEL_ORDERS));
    while !token.is_cancelled() {
        if last_report.is_none_or(|at| at.elapsed() >= REPORT_BACKLOG_EVERY) {
            last_report = Some(tokio::time::Instant::now());
            report_backlog(subscription.as_mut(), &backlog).await;
        }
        // Commands whose delivery failed stay pending in their saga; an
        // order may get no further event to carry them, so send them again
        // from time to time.
        if last_retry.elapsed() >= RETRY_PENDING_EVERY {
            last_retry = tokio::time::Instant::now();
            if let Err(error) = runtime.retry_pending().await {
                tracing::warn!(%error, "a pending checkout command failed again; retrying later");
            }
        }
        let received = tokio::select! {
            () = token.cancelled() => break,
            received = subscription.receive(BATCH, Duration::from_millis(250)) => received,
        };
        let messages = match received {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "the bus failed to deliver; retrying");
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
        };
        let mut by_order: BTreeMap<String, Vec<BusMessage>> = BTreeMap::new();
        for message in messages {
            by_order
                .entry(message.event.stream_id.as_str().to_owned())
                .or_default()
                .push(message);
        }
        let mut tasks = JoinSet::new();
        for (_, messages) in by_order {
            let runtime = runtime.clone();
            let permits = Arc::clone(&permits);
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let mut handled = Vec::with_capacity(messages.len());
                for message in messages {
                    match runtime.handle(&message.event).await {
                        Ok(_) => handled.push(message),
                        Err(error) => {
                            tracing::warn!(%error, stream = %message.event.stream_id, "the saga failed to handle an event; it will be delivered again");
                            break;
                        }
                    }
                }
                handled
            });
        }
        let mut acknowledge = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(handled) => acknowledge.extend(handled),
                Err(error) => tracing::error!(%error, "a saga task panicked"),
            }
        }
        if let Err(error) = subscription.ack_many(&acknowledge).await {
            // Unacknowledged messages come back; the saga skips duplicates.
            tracing::warn!(%error, "acknowledging failed; the messages will be delivered again");
        }
    }
}
