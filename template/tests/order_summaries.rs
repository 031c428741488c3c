//! The order summaries projection, fed events by the test harness: in
//! memory, no manager, no waiting.

use composable_rust::InMemoryProjectionStore;
use composable_rust::prelude::*;
use {{crate_name}}::aggregates::order::{OrderEvent, OrderStatus};
use {{crate_name}}::projections::order_summaries::{
    OrderSummaries, OrderSummary, OrderTotals, TOTALS_KEY,
};

fn harness() -> ProjectionTestHarness<OrderSummaries<InMemoryProjectionStore>> {
    ProjectionTestHarness::new(OrderSummaries::new())
}

#[tokio::test]
async fn keeps_a_summary_per_order_and_totals() {
    let mut harness = harness();
    harness
        .given_events(
            "order-1",
            [
                OrderEvent::Placed {
                    customer: "Ada".into(),
                    total: 30,
                },
                OrderEvent::Paid { amount: 30 },
                OrderEvent::Shipped,
            ],
        )
        .await
        .given_events(
            "order-2",
            [
                OrderEvent::Placed {
                    customer: "Grace".into(),
                    total: 5,
                },
                OrderEvent::Cancelled {
                    reason: "not paid in time".into(),
                },
            ],
        )
        .await;

    let ada: OrderSummary = harness.get_json("order-summary:order-1").await.unwrap();
    assert_eq!(
        ada,
        OrderSummary {
            customer: "Ada".into(),
            total: 30,
            status: OrderStatus::Shipped,
        }
    );
    let totals: OrderTotals = harness.get_json(TOTALS_KEY).await.unwrap();
    assert_eq!(
        totals,
        OrderTotals {
            placed: 2,
            cancelled: 1,
            revenue: 30,
        }
    );
    // Replaying every event from scratch gives the same read model.
    harness.assert_rebuild_matches().await;
}

#[tokio::test]
async fn ignores_other_streams() {
    let mut harness = harness();
    harness
        .given_events("invoice-1", [OrderEvent::Paid { amount: 1 }])
        .await;
    assert!(harness.store().is_empty());
}
