//! The checkout saga: step by step with `SagaTest` (in memory, no store),
//! then for real with the saga runtime, the cashier and the fake gateway on
//! PostgreSQL (`DATABASE_URL`, a schema per test).

use std::sync::Arc;

use composable_rust::postgres::PostgresEventStore;
use composable_rust::prelude::*;
use composable_rust::saga::{CommandId, SagaCommand, SagaId, SagaOutcome};
use composable_rust::uuid::Uuid;
use composable_rust::{Position, SagaRuntime};
use composable_rust_testing::fixtures::TestSchema;
use storefront::cashier::Cashier;
use storefront::checkout::{CheckoutCommand, CheckoutInput, CheckoutSaga, payment_stream};
use storefront::order::{Line, Status};
use storefront::payment::FakeGateway;
use storefront::shop::Shop;

const ORDER: Uuid = Uuid::from_u128(0x1d2c_3b4a_5f6e_4d7c_8b9a_0f1e_2d3c_4b5a);

fn placed(total: u64) -> CheckoutInput {
    CheckoutInput::Placed {
        order: ORDER,
        total,
    }
}

#[test]
fn an_approved_charge_pays_the_order() {
    let mut test = SagaTest::new(CheckoutSaga);
    test.when(placed(2_400))
        .then_commands([CheckoutCommand::Charge {
            order: ORDER,
            amount: 2_400,
        }]);
    test.when(CheckoutInput::Charged)
        .then_commands([CheckoutCommand::Confirm {
            order: ORDER,
            amount: 2_400,
        }]);
    test.when(CheckoutInput::Paid)
        .then_no_commands()
        .then_completed();
    test.finish();
}

#[test]
fn a_declined_charge_cancels_the_order() {
    let mut test = SagaTest::new(CheckoutSaga);
    test.given([placed(50_000)]);
    test.when(CheckoutInput::Declined {
        reason: "over the limit".into(),
    })
    .then_commands([CheckoutCommand::Cancel {
        order: ORDER,
        reason: "the payment was declined: over the limit".into(),
    }]);
    test.when(CheckoutInput::Cancelled)
        .then_no_commands()
        .then_compensated();
    test.finish();
}

#[test]
fn a_second_placed_event_charges_nothing_more() {
    let mut test = SagaTest::new(CheckoutSaga);
    test.given([placed(2_400)]);
    test.when(placed(2_400)).then_no_commands();
    test.finish();
}

/// The shop, the cashier's gateway (declining over 10 000 cents) and the
/// checkout runtime on a fresh schema; the guard comes last.
async fn checkout() -> (
    Arc<Shop>,
    Arc<FakeGateway>,
    SagaRuntime<CheckoutSaga>,
    PostgresEventStore,
    TestSchema,
) {
    let schema = TestSchema::new();
    let events = PostgresEventStore::connect(schema.url())
        .await
        .unwrap()
        .with_schema(schema.name())
        .unwrap();
    events.migrate().await.unwrap();
    let shop = Arc::new(Shop::new(events.clone()));
    let gateway = Arc::new(FakeGateway::new(10_000));
    let cashier = Cashier::new(Arc::clone(&shop), events.clone(), Arc::clone(&gateway));
    let runtime = SagaRuntime::new(CheckoutSaga, events.clone(), cashier);
    (shop, gateway, runtime, events, schema)
}

async fn place(shop: &Shop, sku: &str, quantity: u32) -> Uuid {
    let id = Uuid::new_v4();
    let lines = vec![Line {
        sku: sku.into(),
        quantity,
    }];
    shop.place_order(id, "ada@example.com", lines)
        .await
        .unwrap();
    id
}

async fn outcome(runtime: &SagaRuntime<CheckoutSaga>, order: Uuid) -> Option<SagaOutcome> {
    let saga = runtime.instance(&SagaId::from(order)).await.unwrap();
    saga.outcome()
}

#[tokio::test]
async fn orders_are_paid_or_cancelled_by_what_the_gateway_answers() {
    let (shop, gateway, runtime, events, _schema) = checkout().await;
    let cheap = place(&shop, "mug", 2).await; // 2 400 cents: approved
    let dear = place(&shop, "tee", 5).await; // 12 500 cents: declined

    // Handle every event until there are no more, including those the
    // saga's own commands cause.
    runtime.catch_up(&events, Position::START).await.unwrap();

    assert_eq!(shop.order(cheap).await.unwrap().status, Status::Paid);
    assert_eq!(shop.order(dear).await.unwrap().status, Status::Cancelled);
    assert_eq!(outcome(&runtime, cheap).await, Some(SagaOutcome::Completed));
    assert_eq!(
        outcome(&runtime, dear).await,
        Some(SagaOutcome::Compensated)
    );
    assert_eq!(gateway.taken(), 2_400);

    // Everything delivered again (a restarted process starts from the
    // beginning): nothing happens twice.
    runtime.catch_up(&events, Position::START).await.unwrap();
    assert_eq!(gateway.taken(), 2_400);
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_charge_delivered_twice_is_charged_and_recorded_once() {
    let (shop, gateway, _runtime, events, _schema) = checkout().await;
    let order = place(&shop, "cap", 1).await;
    let cashier = Cashier::new(Arc::clone(&shop), events.clone(), Arc::clone(&gateway));
    let charge = SagaCommand {
        id: CommandId::new("saga-checkout-test#1"),
        saga_id: SagaId::from(order),
        command: CheckoutCommand::Charge {
            order,
            amount: 1_800,
        },
    };
    cashier.dispatch(&charge).await.unwrap();
    cashier.dispatch(&charge).await.unwrap();

    assert_eq!(gateway.taken(), 1_800);
    let recorded = events
        .load_stream(&payment_stream(order).unwrap(), 0)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
}
