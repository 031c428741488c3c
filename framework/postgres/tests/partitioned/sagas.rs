//! Partitioned saga workers ([`PartitionedSagaWorker`]) against a real
//! PostgreSQL, each test in a schema of its own:
//!
//! - two workers start on many saga-starting events, a third joins, the
//!   first is killed (its task aborted) mid-way: every saga ends as a
//!   single runtime ends it, every command's effect runs once (commands
//!   are at least once, deduplicated by their id; only the killed worker
//!   may have delivered one that it could not record), and every
//!   partition's position reaches the head;
//! - a worker whose lease was taken over (a `TestClock` ran past it)
//!   cannot move its partition's position, and the new owner delivers no
//!   command twice;
//! - a saga that only waits for its timeout gets it from the new owner
//!   after its worker was killed (the partition is resumed);
//! - saga lease names (`saga:{KIND}`) are a namespace projections cannot
//!   take, and a saga worker's settings are checked (`CR-E0123`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use composable_rust_core::event::decode;
use composable_rust_core::projection::manager::Partition;
use composable_rust_core::projection::{EventSource, ProjectionCheckpoint, ProjectionConfig};
use composable_rust_core::saga::{
    CommandDispatcher, CommandId, DispatchError, Reaction, Routed, Saga, SagaCommand, SagaContext,
    SagaError, SagaId, SagaRuntime,
};
use composable_rust_core::{
    Clock, Event, EventStore, ExpectedVersion, NewEvent, Position, StoredEvent, StreamId,
    TestClock, Upcasters,
};
use composable_rust_postgres::PostgresEventStore;
use composable_rust_postgres::partition::{
    PartitionError, PartitionLeases, PartitionedSagaWorker, partition_checkpoint, saga_work,
};
use composable_rust_testing::fixtures::TestSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::{assert_leases_given_back, migrate, stores};

// ANCHOR: saga
/// What the shop records on stream `order-{n}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Order {
    Placed { order: String, amount: u64 },
    Paid { order: String },
}
impl Event for Order {}

/// What the saga records about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Progress {
    Reserved { amount: u64 },
    Shipped,
    Released,
}
impl Event for Progress {}

/// What the saga asks the warehouse for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Warehouse {
    Reserve { amount: u64 },
    Ship,
    Release { amount: u64 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Shipment {
    amount: u64,
    reserved: bool,
    shipped: bool,
    released: bool,
}

#[derive(Debug, Clone)]
enum Input {
    Placed { amount: u64 },
    Paid,
}

/// How long an order may stay unpaid before its stock is released.
const PAYMENT_WINDOW: Duration = Duration::from_secs(3600);

/// One saga per order: reserve when it is placed, ship when it is paid,
/// release the stock if it is not paid within the payment window.
struct Shipping;

impl Saga for Shipping {
    const KIND: &'static str = "shipping";
    type State = Shipment;
    type Input = Input;
    type Event = Progress;
    type Command = Warehouse;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<Input>>, SagaError> {
        if !event.stream_id.as_str().starts_with("order-") {
            return Ok(None);
        }
        let routed = match decode::<Order>(event, &Upcasters::new())? {
            Some(Order::Placed { order, amount }) => (order, Input::Placed { amount }),
            Some(Order::Paid { order }) => (order, Input::Paid),
            None => return Ok(None),
        };
        Ok(Some(Routed::new(SagaId::new(routed.0)?, routed.1)))
    }

    fn react(&self, state: &Shipment, input: Input, _: &SagaContext) -> Reaction<Self> {
        match input {
            Input::Placed { amount } if !state.reserved => Reaction::new()
                .record(Progress::Reserved { amount })
                .send(Warehouse::Reserve { amount })
                .start_timeout("payment", PAYMENT_WINDOW),
            Input::Paid if state.reserved && !state.shipped && !state.released => Reaction::new()
                .record(Progress::Shipped)
                .send(Warehouse::Ship)
                .cancel_timeout("payment")
                .complete(),
            _ => Reaction::new(),
        }
    }

    fn on_timeout(&self, state: &Shipment, _name: &str, _: &SagaContext) -> Reaction<Self> {
        if state.shipped || state.released {
            return Reaction::new();
        }
        Reaction::new()
            .record(Progress::Released)
            .send(Warehouse::Release {
                amount: state.amount,
            })
            .compensated()
    }

    fn apply(state: &mut Shipment, event: &Progress) {
        match event {
            Progress::Reserved { amount } => {
                state.amount = *amount;
                state.reserved = true;
            }
            Progress::Shipped => state.shipped = true,
            Progress::Released => state.released = true,
        }
    }
}
// ANCHOR_END: saga

/// The warehouse: every delivery (which worker, which command), and the
/// effect of each command, run once per command id (the id is the
/// idempotency key commands carry).
#[derive(Default)]
struct Warehouses {
    deliveries: Mutex<Vec<(String, CommandId)>>,
    effects: Mutex<BTreeMap<CommandId, (SagaId, Warehouse)>>,
    /// Stalls a delivery of this worker's until woken (once).
    stall: Mutex<Option<Stall>>,
}

/// A delivery to stall: the first of `worker`'s; `saga` is set to its
/// saga when it stalls.
struct Stall {
    worker: String,
    stalled: Arc<Notify>,
    resume: Arc<Notify>,
    saga: Option<SagaId>,
}

impl Warehouses {
    fn deliveries(&self) -> Vec<(String, CommandId)> {
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn stalled_saga(&self) -> Option<SagaId> {
        self.stall
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|stall| stall.saga.clone())
    }

    fn effects(&self) -> BTreeMap<CommandId, (SagaId, Warehouse)> {
        self.effects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One worker's dispatcher into the shared warehouse.
struct Dispatcher {
    worker: String,
    warehouses: Arc<Warehouses>,
}

#[async_trait]
impl CommandDispatcher<Warehouse> for Dispatcher {
    async fn dispatch(&self, command: &SagaCommand<Warehouse>) -> Result<(), DispatchError> {
        let stall = {
            let mut stall = self
                .warehouses
                .stall
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match stall.as_mut() {
                Some(stall) if stall.worker == self.worker && stall.saga.is_none() => {
                    stall.saga = Some(command.saga_id.clone());
                    Some((Arc::clone(&stall.stalled), Arc::clone(&stall.resume)))
                }
                _ => None,
            }
        };
        if let Some((stalled, resume)) = stall {
            stalled.notify_one();
            resume.notified().await;
        }
        let warehouses = &self.warehouses;
        warehouses
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.worker.clone(), command.id.clone()));
        warehouses
            .effects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(command.id.clone())
            .or_insert_with(|| (command.saga_id.clone(), command.command.clone()));
        Ok(())
    }
}

/// Appends `Placed` (or `Paid`) for orders `0..orders`, one stream each.
async fn append_orders(events: &PostgresEventStore, orders: usize, paid: bool) {
    for n in 0..orders {
        let order = format!("o-{n}");
        let event = if paid {
            Order::Paid { order }
        } else {
            Order::Placed {
                order,
                amount: (n % 7 + 1) as u64,
            }
        };
        let stream = StreamId::new(format!("order-{n}")).unwrap();
        events
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![NewEvent::from_event(&event).unwrap()],
            )
            .await
            .expect("append an order event");
    }
}

fn rounds() -> ProjectionConfig {
    ProjectionConfig {
        batch_size: 50,
        idle_poll_interval: Duration::from_millis(50),
        failure_backoff: Duration::from_millis(20),
        max_failure_backoff: Duration::from_millis(200),
        ..ProjectionConfig::default()
    }
}

/// A running worker: its task (abort it to kill the worker) and handle.
struct Running {
    worker: PartitionedSagaWorker<Shipping>,
    task: JoinHandle<Result<(), PartitionError>>,
}

// ANCHOR: worker
/// Starts saga worker `id` on a pool of its own, as a process would.
async fn start_worker(
    schema: &str,
    id: &str,
    warehouses: &Arc<Warehouses>,
    clock: Arc<dyn Clock>,
    (lease, heartbeat): (Duration, Duration),
) -> Running {
    let (events, store) = stores(schema, 6).await;
    let dispatcher = Arc::new(Dispatcher {
        worker: id.to_owned(),
        warehouses: Arc::clone(warehouses),
    });
    // Each partition the worker claims gets a fresh runtime: the same
    // event store, dispatcher and clock, an empty cache.
    let runtime = {
        let (events, clock) = (events.clone(), Arc::clone(&clock));
        move || {
            SagaRuntime::builder(Shipping, events.clone(), Arc::clone(&dispatcher))
                .with_clock(Arc::clone(&clock))
                .build()
        }
    };
    let worker = PartitionedSagaWorker::builder(runtime, store, events, 8)
        .with_worker_id(id)
        .with_lease_duration(lease)
        .with_heartbeat(heartbeat)
        .with_clock(clock)
        .with_config(rounds())
        .build()
        .expect("valid settings");
    let task = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run().await }
    });
    Running { worker, task }
}
// ANCHOR_END: worker

/// Leases of 1.2 s renewed every 100 ms: a killed worker's partitions
/// move within seconds.
const QUICK: (Duration, Duration) = (Duration::from_millis(1200), Duration::from_millis(100));

/// Waits (up to a minute) until `done` holds, polling every 50 ms.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within a minute");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// True when every partition's stored position is at the head of the
/// global stream (the sagas' own events included).
async fn at_head(worker: &PartitionedSagaWorker<Shipping>, events: &PostgresEventStore) -> bool {
    for position in worker.positions().await.expect("read the positions") {
        if EventSource::count_after(events, position)
            .await
            .expect("count")
            > 0
        {
            return false;
        }
    }
    true
}

/// Every saga's state and outcome, read from `events`.
async fn end_states(
    events: &PostgresEventStore,
    orders: usize,
) -> BTreeMap<String, (Shipment, String)> {
    let reader = SagaRuntime::new(
        Shipping,
        events.clone(),
        Arc::new(Dispatcher {
            worker: "reader".into(),
            warehouses: Arc::default(),
        }),
    );
    let mut states = BTreeMap::new();
    for n in 0..orders {
        let id = SagaId::new(format!("o-{n}")).unwrap();
        let instance = reader.instance(&id).await.expect("load a saga");
        states.insert(
            format!("o-{n}"),
            (
                instance.state().clone(),
                format!("{:?}", instance.outcome()),
            ),
        );
    }
    reader.shutdown().await;
    states
}

/// The same orders handled by one plain runtime in a fresh schema: every
/// saga's end state and the commands it delivered.
async fn single_runtime(orders: usize) -> (BTreeMap<String, (Shipment, String)>, Arc<Warehouses>) {
    let reference = TestSchema::new();
    migrate(reference.name()).await;
    let (events, _) = stores(reference.name(), 2).await;
    let warehouses = Arc::new(Warehouses::default());
    let runtime = SagaRuntime::new(
        Shipping,
        events.clone(),
        Arc::new(Dispatcher {
            worker: "single".into(),
            warehouses: Arc::clone(&warehouses),
        }),
    );
    append_orders(&events, orders, false).await;
    append_orders(&events, orders, true).await;
    runtime
        .catch_up(&events, Position::START)
        .await
        .expect("a single runtime handles every order");
    runtime.shutdown().await;
    let states = end_states(&events, orders).await;
    (states, warehouses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn saga_workers_added_and_killed_end_every_saga_as_one_runtime_does() {
    const ORDERS: usize = 300;
    let schema = TestSchema::new();
    let name = schema.name().to_owned();
    migrate(&name).await;
    let (events, store) = stores(&name, 2).await;
    append_orders(&events, ORDERS, false).await;

    let warehouses = Arc::new(Warehouses::default());
    let clock: Arc<dyn Clock> = Arc::new(composable_rust_core::SystemClock);
    let a = start_worker(&name, "a", &warehouses, Arc::clone(&clock), QUICK).await;
    let b = start_worker(&name, "b", &warehouses, Arc::clone(&clock), QUICK).await;
    // Both at work (a delivered commands), then a third joins and gets
    // its share, then the first is killed mid-way.
    let (w, e) = (&warehouses, &events);
    eventually("worker a delivers commands", move || async move {
        w.deliveries().iter().any(|(worker, _)| worker == "a")
    })
    .await;
    let c = start_worker(&name, "c", &warehouses, Arc::clone(&clock), QUICK).await;
    let mut c_owned = c.worker.subscribe_owned();
    c_owned.wait_for(|owned| !owned.is_empty()).await.unwrap();
    a.task.abort();
    assert!(a.task.await.unwrap_err().is_cancelled());
    // The second half of every saga arrives after the kill.
    append_orders(&events, ORDERS, true).await;

    let b_worker = &b.worker;
    eventually(
        "every saga shipped and every partition at the head",
        move || async move { w.effects().len() == 2 * ORDERS && at_head(b_worker, e).await },
    )
    .await;
    for running in [&b, &c] {
        running.worker.shutdown();
    }
    for running in [b, c] {
        running.task.await.unwrap().expect("worker stopped cleanly");
    }

    // Every saga ends as one runtime ends it, with the same commands.
    let (expected, single) = single_runtime(ORDERS).await;
    assert_eq!(end_states(&events, ORDERS).await, expected);
    assert!(expected.values().all(|(state, _)| state.shipped));
    assert_eq!(warehouses.effects(), single.effects());
    // Each command's effect ran once; a command delivered more than once
    // was first delivered by the killed worker (cut off before it could
    // record the delivery), never by two live ones.
    let mut first: BTreeMap<CommandId, String> = BTreeMap::new();
    let mut again = BTreeSet::new();
    for (worker, command) in warehouses.deliveries() {
        if let Some(earlier) = first.get(&command) {
            assert_eq!(earlier, "a", "{command} delivered twice by live workers");
            again.insert(command);
        } else {
            first.insert(command, worker);
        }
    }
    assert!(
        again.len() <= 8,
        "at most one per partition of a: {again:?}"
    );
    assert!(first.values().any(|worker| worker == "a"));
    assert!(first.values().any(|worker| worker == "c"));

    // The stopped workers gave their leases back.
    assert_leases_given_back(&store, &saga_work(Shipping::KIND), "a").await;
    store.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_worker_whose_lease_was_taken_cannot_move_the_position() {
    const ORDERS: usize = 12;
    let schema = TestSchema::new();
    let name = schema.name().to_owned();
    migrate(&name).await;
    let (events, store) = stores(&name, 2).await;
    append_orders(&events, ORDERS, false).await;
    let work = saga_work(Shipping::KIND);
    let clock = Arc::new(TestClock::new());

    // The slow worker stalls delivering its first command. Its heartbeat
    // is far away: nothing but the fence stops it.
    let warehouses = Arc::new(Warehouses::default());
    let (stalled, resume) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    *warehouses.stall.lock().unwrap() = Some(Stall {
        worker: "slow".into(),
        stalled: Arc::clone(&stalled),
        resume: Arc::clone(&resume),
        saga: None,
    });
    let slow_timing = (Duration::from_secs(100), Duration::from_secs(30));
    let slow = start_worker(&name, "slow", &warehouses, clock.clone(), slow_timing).await;
    stalled.notified().await;
    let saga = warehouses
        .stalled_saga()
        .expect("the stalled command's saga");
    let count = std::num::NonZeroU32::new(8).unwrap();
    let partition = Partition::all(count)
        .find(|partition| partition.contains(saga.as_str()))
        .unwrap();
    let checkpoint = partition_checkpoint(&work, partition);

    // Its leases run out; another worker takes them (the stalled
    // partition among them: nothing is being committed there).
    clock.advance(Duration::from_secs(101));
    let leases = PartitionLeases::new(&store);
    let taken = leases
        .claim(
            &work,
            count,
            "fast",
            8,
            clock.now(),
            clock.now() + chrono::Duration::seconds(60),
        )
        .await
        .unwrap();
    assert!(taken.iter().any(|lease| lease.partition == partition));
    let before = slow.worker.positions().await.unwrap();

    // The slow worker goes on: it delivers its commands, and cannot
    // store a position (CR-E0121, rolled back) in any partition it lost.
    resume.notify_one();
    let w = &warehouses;
    let prefix = format!("saga-{}-{saga}#", Shipping::KIND);
    let prefix = prefix.as_str();
    eventually("the stalled round delivers", move || async move {
        w.deliveries()
            .iter()
            .any(|(_, id)| id.as_str().starts_with(prefix))
    })
    .await;
    slow.worker.shutdown();
    slow.task
        .await
        .unwrap()
        .expect("the slow worker stops cleanly");
    assert_eq!(store.load_position(&checkpoint).await.unwrap(), None);
    let after = slow.worker.positions().await.unwrap();
    for lease in &taken {
        let index = lease.partition.index() as usize;
        assert_eq!(after[index], before[index], "partition {}", lease.partition);
    }

    // Once the partitions are free again, a new worker finishes the work
    // from the stored positions: what the slow worker recorded is
    // recognised, and no command is delivered twice.
    for lease in &taken {
        leases.release(lease).await.unwrap();
    }
    let next = start_worker(&name, "next", &warehouses, clock.clone(), QUICK).await;
    let (e, next_worker) = (&events, &next.worker);
    eventually(
        "every order reserved and every partition at the head",
        move || async move { w.effects().len() == ORDERS && at_head(next_worker, e).await },
    )
    .await;
    next.worker.shutdown();
    next.task.await.unwrap().expect("stops cleanly");
    let deliveries = warehouses.deliveries();
    let distinct: BTreeSet<&CommandId> = deliveries.iter().map(|(_, id)| id).collect();
    assert_eq!(distinct.len(), deliveries.len(), "{deliveries:?}");
    store.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_waiting_for_its_timeout_gets_it_after_its_partition_changes_hands() {
    let schema = TestSchema::new();
    let name = schema.name().to_owned();
    migrate(&name).await;
    let (events, store) = stores(&name, 2).await;
    append_orders(&events, 1, false).await;
    let clock = Arc::new(TestClock::new());
    let warehouses = Arc::new(Warehouses::default());

    // The first worker reserves the stock and arms the payment timeout,
    // stores its position, and is killed: its runtimes, and their timers,
    // go with it.
    let first = start_worker(&name, "first", &warehouses, clock.clone(), QUICK).await;
    let (e, first_worker) = (&events, &first.worker);
    eventually(
        "the order reserved, its position stored",
        move || async move { at_head(first_worker, e).await },
    )
    .await;
    first.task.abort();
    assert!(first.task.await.unwrap_err().is_cancelled());

    // Its leases run out; a second worker takes the partitions. No event
    // will ever load the saga again: only resuming the partition arms its
    // timeout in the new owner's runtime.
    clock.advance(QUICK.0 * 2);
    let second = start_worker(&name, "second", &warehouses, clock.clone(), QUICK).await;
    let second_worker = &second.worker;
    eventually(
        "the second worker holds every partition",
        move || async move { second_worker.owned().len() == 8 },
    )
    .await;
    clock.advance(PAYMENT_WINDOW);
    let w = &warehouses;
    eventually("the stock released by the new owner", move || async move {
        w.effects()
            .values()
            .any(|(_, command)| matches!(command, Warehouse::Release { .. }))
    })
    .await;
    second.worker.shutdown();
    second.task.await.unwrap().expect("stops cleanly");
    let releases: Vec<String> = warehouses
        .deliveries()
        .into_iter()
        .filter(|(_, id)| {
            warehouses
                .effects()
                .get(id)
                .is_some_and(|(_, command)| matches!(command, Warehouse::Release { .. }))
        })
        .map(|(worker, _)| worker)
        .collect();
    assert_eq!(releases, ["second"], "released once, by the new owner");
    store.pool().close().await;
}

/// A projection with any name, to try the saga namespace.
struct Named(&'static str);

#[async_trait]
impl composable_rust_core::Projection for Named {
    type Store = composable_rust_postgres::PostgresProjectionStore;

    fn name(&self) -> &str {
        self.0
    }

    async fn apply(
        &self,
        _: &StoredEvent,
        _: &mut composable_rust_postgres::PostgresProjectionTx,
    ) -> Result<(), composable_rust_core::ProjectionError> {
        Ok(())
    }

    async fn reset(
        &self,
        _: &mut composable_rust_postgres::PostgresProjectionTx,
    ) -> Result<(), composable_rust_core::ProjectionError> {
        Ok(())
    }
}

#[tokio::test]
async fn saga_lease_names_are_a_namespace_of_their_own() {
    use composable_rust_core::CodedError;
    use composable_rust_postgres::partition::{PartitionedWorker, SAGA_WORK_PREFIX};

    let schema = TestSchema::new();
    let (events, store) = stores(schema.name(), 1).await;
    assert_eq!(saga_work(Shipping::KIND), "saga:shipping");
    assert!(saga_work(Shipping::KIND).starts_with(SAGA_WORK_PREFIX));

    // A projection cannot take a saga kind's lease name.
    let error =
        PartitionedWorker::builder(Named("saga:shipping"), store.clone(), events.clone(), 4)
            .build()
            .expect_err("a projection name in the saga namespace");
    assert_eq!(error.code().as_str(), "CR-E0123", "{error}");
    assert!(error.to_string().contains("saga:"), "{error}");
    assert!(
        PartitionedWorker::builder(Named("shipping"), store.clone(), events.clone(), 4)
            .build()
            .is_ok()
    );

    // A saga worker's settings are checked like a projection worker's.
    let runtime = {
        let events = events.clone();
        move || {
            SagaRuntime::new(
                Shipping,
                events.clone(),
                Arc::new(Dispatcher {
                    worker: "unused".into(),
                    warehouses: Arc::default(),
                }),
            )
        }
    };
    let error = PartitionedSagaWorker::builder(runtime, store.clone(), events, 4)
        .with_config(ProjectionConfig {
            batch_size: 0,
            ..ProjectionConfig::default()
        })
        .build()
        .expect_err("a batch size of 0");
    assert_eq!(error.code().as_str(), "CR-E0123", "{error}");
    assert!(!error.is_transient());
    store.pool().close().await;
}
