//! A checkout process killed mid-flow, and a new one started on the same
//! event store: the saga resumes and completes or compensates, and no step
//! runs twice with effect. The fake gateways count every call and every
//! effect, and panic if an order is ever reserved or charged twice.
//!
//! "Killing" a process drops it (its runtime, its timers, its delivery
//! position) at a chosen point; the event store and the gateways survive,
//! as a database and another company's systems would.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use checkout::domain::Cents;
use checkout::gateways::{PaymentError, PaymentGateway};
use checkout::{CheckoutApp, CheckoutSaga, FakeInventory, FakePayment, LineItem, OrderStatus};
use composable_rust::SagaError;
use composable_rust::prelude::*;
use composable_rust::saga::{CommandId, SagaOutcome};
use composable_rust::{InMemoryEventStore, TestClock};
use tokio::sync::Notify;

const TIMEOUT: Duration = Duration::from_secs(30);

struct World {
    store: Arc<dyn EventStore>,
    clock: TestClock,
    inventory: Arc<FakeInventory>,
    payment: Arc<FakePayment>,
}

impl World {
    fn new(payment: FakePayment) -> Self {
        let clock = TestClock::new();
        Self {
            store: Arc::new(InMemoryEventStore::new().with_clock(Arc::new(clock.clone()))),
            clock,
            inventory: Arc::new(FakeInventory::with_stock([("book", 5)])),
            payment: Arc::new(payment),
        }
    }

    /// Starts a process (resuming whatever a previous one left running).
    async fn start(&self) -> CheckoutApp {
        self.start_with_payment(self.payment.clone()).await
    }

    async fn start_with_payment(&self, payment: Arc<dyn PaymentGateway>) -> CheckoutApp {
        CheckoutApp::start(
            Arc::clone(&self.store),
            Arc::new(self.clock.clone()),
            CheckoutSaga::new(TIMEOUT),
            self.inventory.clone(),
            payment,
        )
        .await
        .unwrap()
    }

    async fn order_placed_by(&self, app: &CheckoutApp, customer: &str) {
        app.place_order("1001", customer, vec![LineItem::new("book", 2, 1500)])
            .await
            .unwrap();
    }
}

async fn status(app: &CheckoutApp) -> OrderStatus {
    app.order("1001").await.unwrap().status
}

async fn outcome(app: &CheckoutApp) -> Option<SagaOutcome> {
    app.saga("1001").await.unwrap().outcome()
}

#[tokio::test]
async fn killed_between_two_steps_it_resumes_and_completes() {
    let world = World::new(FakePayment::new());
    let first = world.start().await;
    world.order_placed_by(&first, "ada").await;
    // The saga handles `order.placed`: inventory reserved. Then the process
    // dies, before `inventory.reserved` reaches the saga.
    assert!(first.deliver_next().await.unwrap());
    assert_eq!(world.inventory.stats().reservations, 1);
    drop(first);

    let second = world.start().await;
    // It delivers every event again from the start; the saga skips those it
    // handled and goes on with the rest.
    second.deliver_events().await.unwrap();

    assert_eq!(status(&second).await, OrderStatus::Confirmed);
    assert_eq!(outcome(&second).await, Some(SagaOutcome::Completed));
    let inventory = world.inventory.stats();
    assert_eq!((inventory.calls, inventory.reservations), (1, 1));
    let payment = world.payment.stats();
    assert_eq!(
        (payment.calls, payment.charges, payment.balance),
        (1, 1, 3000)
    );
    assert_eq!(world.inventory.stock("book"), 3);
}

// ANCHOR: killed_after_charge
/// Passes charges on to the real provider, then hangs: the process dies
/// after the money was taken, before the answer was recorded.
struct DiesAfterCharging {
    provider: Arc<FakePayment>,
    charged: Arc<Notify>,
}

#[async_trait]
impl PaymentGateway for DiesAfterCharging {
    async fn charge(
        &self,
        key: &CommandId,
        order_id: &str,
        customer: &str,
        amount: Cents,
    ) -> Result<String, PaymentError> {
        let _ = self.provider.charge(key, order_id, customer, amount).await;
        self.charged.notify_one();
        std::future::pending().await
    }

    async fn refund(&self, _: &CommandId, _: &str) -> Result<Option<Cents>, PaymentError> {
        panic!("no refund expected");
    }
}

#[tokio::test]
async fn killed_after_the_money_was_taken_it_does_not_charge_again() {
    let world = World::new(FakePayment::new());
    let charged = Arc::new(Notify::new());
    let dying = DiesAfterCharging {
        provider: world.payment.clone(),
        charged: Arc::clone(&charged),
    };
    let first = Arc::new(world.start_with_payment(Arc::new(dying)).await);
    world.order_placed_by(&first, "ada").await;
    let running = tokio::spawn({
        let first = Arc::clone(&first);
        async move { first.deliver_events().await }
    });
    charged.notified().await;
    running.abort();
    let _ = running.await;
    drop(first);
    assert_eq!(world.payment.stats().charges, 1);

    // The new process finds the charge recorded as sent-but-not-delivered
    // and sends it again, with the same command id: the provider recognises
    // its idempotency key and answers without charging again.
    let second = world.start().await;
    second.deliver_events().await.unwrap();

    assert_eq!(status(&second).await, OrderStatus::Confirmed);
    let payment = world.payment.stats();
    assert_eq!(payment.calls, 2, "the charge was sent twice");
    assert_eq!(payment.charges, 1, "and taken once");
    assert_eq!(payment.balance, 3000);
    assert_eq!(world.inventory.stats().reservations, 1);
}
// ANCHOR_END: killed_after_charge

#[tokio::test]
async fn killed_before_a_recorded_command_went_out_it_sends_it_on_restart() {
    let world = World::new(FakePayment::new());
    let first = world.start().await;
    first.services().set_reachable(false);
    world.order_placed_by(&first, "ada").await;
    // The saga records its step (reserve the inventory), but the command
    // cannot be delivered; then the process dies.
    let error = first.deliver_events().await.unwrap_err();
    assert!(matches!(error, SagaError::Dispatch { .. }), "{error}");
    assert_eq!(world.inventory.stats().calls, 0);
    drop(first);

    let second = world.start().await;
    assert_eq!(
        world.inventory.stats().reservations,
        1,
        "start() sent the pending command"
    );
    second.deliver_events().await.unwrap();
    assert_eq!(status(&second).await, OrderStatus::Confirmed);
    assert_eq!(world.inventory.stats().calls, 1);
    assert_eq!(world.payment.stats().charges, 1);
}

// ANCHOR: killed_while_waiting
#[tokio::test]
async fn killed_while_waiting_for_an_answer_it_times_out_and_compensates_after_restart() {
    let world = World::new(FakePayment::new().not_answering("carol"));
    let first = world.start().await;
    world.order_placed_by(&first, "carol").await;
    first.deliver_events().await.unwrap();
    assert_eq!(world.payment.stats().charges, 1, "taken, but no answer");
    world.clock.advance(Duration::from_secs(10));
    drop(first);

    let second = world.start().await;
    assert_eq!(second.runtime().armed_timeouts(), 1);
    // 20 s were left of the payment's 30 s.
    world.clock.advance(Duration::from_secs(19));
    second.runtime().idle().await;
    assert_eq!(outcome(&second).await, None);
    world.clock.advance(Duration::from_secs(1));
    second.runtime().idle().await;

    assert_eq!(outcome(&second).await, Some(SagaOutcome::Compensated));
    assert!(matches!(
        status(&second).await,
        OrderStatus::Cancelled { .. }
    ));
    let payment = world.payment.stats();
    assert_eq!((payment.refunds, payment.balance), (1, 0));
    let inventory = world.inventory.stats();
    assert_eq!((inventory.reservations, inventory.releases), (1, 1));
    assert_eq!(world.inventory.stock("book"), 5);
}
// ANCHOR_END: killed_while_waiting

#[tokio::test]
async fn a_declined_payment_compensates_across_a_restart() {
    let world = World::new(FakePayment::new().declining("bob"));
    let first = world.start().await;
    world.order_placed_by(&first, "bob").await;
    // order.placed, then inventory.reserved (the charge is declined).
    assert!(first.deliver_next().await.unwrap());
    assert!(first.deliver_next().await.unwrap());
    drop(first);

    let second = world.start().await;
    second.deliver_events().await.unwrap();
    assert_eq!(
        status(&second).await,
        OrderStatus::Cancelled {
            reason: "payment declined: insufficient funds".into()
        }
    );
    assert_eq!(world.payment.stats().declines, 1);
    assert_eq!(world.inventory.stats().releases, 1);
    assert_eq!(world.inventory.stock("book"), 5);
}

#[tokio::test]
async fn two_processes_delivering_the_same_events_run_each_step_once() {
    let world = World::new(FakePayment::new());
    let a = world.start().await;
    let b = world.start().await;
    world.order_placed_by(&a, "ada").await;
    loop {
        let a_moved = a.deliver_next().await.unwrap();
        let b_moved = b.deliver_next().await.unwrap();
        if !a_moved && !b_moved {
            break;
        }
    }
    assert_eq!(status(&a).await, OrderStatus::Confirmed);
    assert_eq!(world.inventory.stats().calls, 1);
    assert_eq!(world.payment.stats().calls, 1);
}

#[tokio::test]
async fn short_stock_never_reaches_the_payment_provider() {
    let world = World::new(FakePayment::unused(
        "the stock is short, so nothing may be charged",
    ));
    let app = world.start().await;
    app.place_order("1001", "ada", vec![LineItem::new("book", 9, 1500)])
        .await
        .unwrap();
    app.deliver_events().await.unwrap();
    assert_eq!(
        status(&app).await,
        OrderStatus::Cancelled {
            reason: "inventory rejected: book is out of stock".into()
        }
    );
    assert_eq!(world.inventory.stats().rejections, 1);
}

#[tokio::test]
#[should_panic(expected = "order 1001 was charged twice under different keys")]
async fn the_fake_provider_fails_loudly_on_a_double_charge() {
    let payment = FakePayment::new();
    let _ = payment
        .charge(&CommandId::new("a"), "1001", "ada", 100)
        .await;
    let _ = payment
        .charge(&CommandId::new("b"), "1001", "ada", 100)
        .await;
}

#[tokio::test]
#[should_panic(expected = "this test expects no payment call")]
async fn an_unused_fake_fails_loudly_when_called() {
    let payment = FakePayment::unused("nothing to pay");
    let _ = payment
        .charge(&CommandId::new("a"), "1001", "ada", 100)
        .await;
}
