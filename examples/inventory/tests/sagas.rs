//! Both sagas, pure and instant: `SagaTest` feeds them inputs on a test
//! clock and demands that every command they send be asserted. No store,
//! no runtime; the integration tests run the same sagas on PostgreSQL.

use std::time::Duration;

use composable_rust::Clock;
use composable_rust::chrono;
use composable_rust_testing::SagaTest;
use inventory::expiry::{EXPIRY, ExpiryCommand, ExpiryInput, ExpirySaga};
use inventory::replenishment::{ReplenishmentCommand, ReplenishmentInput, ReplenishmentSaga};

const TTL: Duration = Duration::from_secs(15 * 60);

fn reserved(test: &SagaTest<ExpirySaga>, expires_in: chrono::Duration) -> ExpiryInput {
    ExpiryInput::Reserved {
        sku: "CUP".into(),
        reservation_id: "r1".into(),
        expires_at: test.clock().now() + expires_in,
    }
}

#[test]
fn a_reservation_expires_at_its_deadline() {
    let mut test = SagaTest::new(ExpirySaga).with_saga_id("CUP.r1");
    let input = reserved(&test, chrono::Duration::minutes(15));
    test.when(input)
        .then_no_commands()
        .then_timeout(EXPIRY, TTL);
    test.advance(TTL - Duration::from_secs(1))
        .then_no_commands();
    test.advance(Duration::from_secs(1))
        .then_commands([ExpiryCommand::Release {
            sku: "CUP".into(),
            reservation_id: "r1".into(),
        }])
        .then_completed();
    test.finish();
}

#[test]
fn a_reservation_closed_in_time_cancels_its_timeout() {
    let mut test = SagaTest::new(ExpirySaga).with_saga_id("CUP.r1");
    let input = reserved(&test, chrono::Duration::minutes(15));
    test.when(input).then_no_commands();
    test.when(ExpiryInput::Closed)
        .then_no_commands()
        .then_no_timeouts()
        .then_completed();
    test.advance(TTL * 2).then_no_commands();
    test.finish();
}

#[test]
fn a_saga_that_sees_the_reservation_late_expires_it_at_once() {
    let mut test = SagaTest::new(ExpirySaga).with_saga_id("CUP.r1");
    // The deadline passed while the saga was behind.
    let input = reserved(&test, chrono::Duration::minutes(-5));
    test.when(input).then_timeout(EXPIRY, Duration::ZERO);
    test.advance(Duration::ZERO)
        .then_commands([ExpiryCommand::Release {
            sku: "CUP".into(),
            reservation_id: "r1".into(),
        }])
        .then_completed();
    test.finish();
}

#[test]
fn replenishment_orders_once_and_ends_when_the_goods_arrive() {
    let mut test = SagaTest::new(ReplenishmentSaga).with_saga_id("PO-LAMP-east-1");
    test.when(ReplenishmentInput::Requested {
        sku: "LAMP".into(),
        warehouse: "east".into(),
        quantity: 25,
    })
    .then_commands([ReplenishmentCommand::PlacePurchaseOrder {
        purchase_order: "PO-LAMP-east-1".into(),
        sku: "LAMP".into(),
        warehouse: "east".into(),
        quantity: 25,
    }]);
    // The same event again: recognised, nothing ordered.
    test.when_redelivered().then_no_commands();
    // A second request for the same purchase order (a bug upstream, or a
    // replay) orders nothing either: the saga is past that stage.
    test.when(ReplenishmentInput::Requested {
        sku: "LAMP".into(),
        warehouse: "east".into(),
        quantity: 25,
    })
    .then_no_commands();
    test.when(ReplenishmentInput::Placed {
        supplier_reference: "SUP-0001".into(),
    })
    .then_no_commands()
    .then_running();
    test.when(ReplenishmentInput::Received { quantity: 25 })
        .then_no_commands()
        .then_completed();
    test.finish();
}
