//! Listing 13-3: a saga test must assert every command the saga sends.
//! Each test below forgets one, and `SagaTest` fails it, naming the
//! command.

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use checkout::{CheckoutCommand, CheckoutInput, CheckoutSaga, LineItem};
    use composable_rust::prelude::*;

    fn placed() -> CheckoutInput {
        CheckoutInput::OrderPlaced(checkout::domain::PlacedOrder {
            order_id: "1001".into(),
            customer: "ada".into(),
            items: vec![LineItem::new("book", 2, 1500)],
            total: 3000,
        })
    }

    // ANCHOR: unasserted
    #[test]
    #[should_panic(expected = "never asserted before the end of the test")]
    fn a_command_nobody_asserted_fails_the_test() {
        let mut test = SagaTest::new(CheckoutSaga::new(Duration::from_secs(30)));
        // The saga answers with ReserveInventory; the test says nothing
        // about it.
        test.when(placed());
        test.finish();
    }

    #[test]
    #[should_panic(expected = "never asserted before when(InventoryReserved)")]
    fn so_does_moving_on_to_the_next_input() {
        let mut test = SagaTest::new(CheckoutSaga::new(Duration::from_secs(30)));
        test.when(placed());
        test.when(CheckoutInput::InventoryReserved).then_commands([
            CheckoutCommand::ChargePayment {
                order_id: "1001".into(),
                customer: "ada".into(),
                amount: 3000,
            },
        ]);
        test.finish();
    }

    #[test]
    #[should_panic(expected = "never asserted before advance")]
    fn and_letting_time_pass() {
        let mut test = SagaTest::new(CheckoutSaga::new(Duration::from_secs(30)));
        test.when(placed());
        test.advance(Duration::from_secs(30));
        test.finish();
    }
    // ANCHOR_END: unasserted
}
