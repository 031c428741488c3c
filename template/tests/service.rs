//! The whole service on the real servers: an order placed and paid is
//! shipped by the fulfillment saga through Redis Streams, and the read
//! model in PostgreSQL shows it. Needs `DATABASE_URL` and `REDIS_URL`
//! (`docker compose up -d`, see README.md). The test works in a schema and
//! key prefix of its own, `{{crate_name}}_test`, on an order nobody else
//! uses, so it can run again and again.

use std::time::Duration;

use composable_rust::aggregate::{AsOf, StateCondition};
use composable_rust::prelude::*;
use composable_rust::testing::services;
use composable_rust::uuid::Uuid;
use {{crate_name}}::aggregates::order::{OrderCommand, OrderStatus};
use {{crate_name}}::app::{App, Config};
use {{crate_name}}::ops;
use {{crate_name}}::projections::order_summaries::{OrderSummary, summary_key};

async fn app() -> App {
    // Each fails with a message saying how to start the server when its
    // variable is unset.
    let config = Config {
        database_url: services::database_url(),
        redis_url: services::redis_url(),
        schema: Config::SCHEMA.to_owned(),
    }
    .with_schema("{{crate_name}}_test");
    App::connect(&config).await.unwrap()
}

#[tokio::test]
async fn a_paid_order_is_shipped_and_the_read_model_shows_it() {
    let app = app().await;
    let stream = app.orders.stream_id(Uuid::new_v4()).unwrap();
    let place = OrderCommand::Place {
        customer: "Ada".into(),
        total: 30,
    };
    app.orders.execute(&stream, place).await.unwrap();
    app.orders
        .execute(&stream, OrderCommand::Pay { amount: 30 })
        .await
        .unwrap();

    let report = app.work(Duration::from_secs(15 * 60)).await.unwrap();
    assert!(report.published >= 2, "{report:?}");

    let order = app.orders.load(&stream).await.unwrap();
    assert_eq!(order.state.status, OrderStatus::Shipped);
    let summary: OrderSummary = app
        .read_model
        .get_json(&summary_key(&stream))
        .await
        .unwrap()
        .expect("the projection wrote the order's summary");
    assert_eq!(summary.status, OrderStatus::Shipped);
    assert_eq!(summary.total, 30);

    // The replay debugger (`ops replay`) stops at the event that paid it.
    let until: StateCondition = r#"status == "Paid""#.parse().unwrap();
    let mut out = Vec::new();
    ops::replay(&app.orders, &stream, AsOf::Version(0), Some(&until), &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("~ status: \"Placed\" -> \"Paid\""), "{out}");
    assert!(out.contains("stopped at version 2"), "{out}");

    // The fulfillment's history (`ops saga show`): its id is the order's.
    let order_id = stream.as_str().strip_prefix("order-").unwrap();
    let mut chart = Vec::new();
    ops::saga_history(&app.events, order_id, &mut chart)
        .await
        .unwrap();
    let chart = String::from_utf8(chart).unwrap();
    assert!(chart.starts_with("sequenceDiagram"), "{chart}");
    assert!(chart.contains("Ship"), "{chart}");
}
