//! The order history against a real PostgreSQL (`DATABASE_URL`, and
//! `READ_DATABASE_URL` if set): each test works in schemas of its own and
//! drops them at the end, even when it fails.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::aggregate::RepositoryError;
use composable_rust::{AggregateRepository, ProjectionManager, TestClock};
use composable_rust_testing::fixtures::TestSchema;
use composable_rust_testing::services::database_url;
use order_history::{
    Line, Order, OrderCommand, OrderError, OrderHistory, OrderHistoryApp, OrderHistoryQueries,
    OrderView, Status,
};

const TIMEOUT: Duration = Duration::from_secs(10);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The app in two test schemas (the event store's on `DATABASE_URL`, the
/// read models' on `READ_DATABASE_URL`), dropped with the fixture.
struct Fixture {
    app: OrderHistoryApp,
    clock: TestClock,
    orders: AggregateRepository<Order, composable_rust::postgres::PostgresEventStore>,
    manager: ProjectionManager<OrderHistory>,
    queries: OrderHistoryQueries,
    // Fields drop in order: the app and its pools, then the schemas.
    events_schema: TestSchema,
    _read_schema: TestSchema,
}

impl Fixture {
    async fn new() -> Self {
        let events_schema = TestSchema::new();
        let read_url = std::env::var("READ_DATABASE_URL").unwrap_or_else(|_| database_url());
        let read_schema = TestSchema::from_url(read_url);
        let app = OrderHistoryApp::connect(events_schema.name(), read_schema.name())
            .await
            .unwrap_or_else(|error| panic!("needs PostgreSQL at DATABASE_URL: {error}"));
        let clock = TestClock::starting_at("2025-03-01T09:00:00Z".parse().unwrap());
        Self {
            orders: AggregateRepository::<Order, _>::new(
                app.events.clone(),
                Arc::new(clock.clone()),
            ),
            manager: Self::manager(&app),
            queries: OrderHistoryQueries::new(app.table.clone()),
            clock,
            app,
            events_schema,
            _read_schema: read_schema,
        }
    }

    fn manager(app: &OrderHistoryApp) -> ProjectionManager<OrderHistory> {
        let projection = OrderHistory::new(app.table.clone());
        ProjectionManager::new(projection, Arc::clone(&app.read_models), app.events.clone())
    }

    /// Runs `command` on order `number` and waits until the read model has it.
    async fn execute(&self, number: u32, command: OrderCommand) {
        let stream = self.orders.stream_id(number).unwrap();
        let done = self.orders.execute(&stream, command).await.unwrap();
        // Catch up until the projection has the write (a read may be held
        // back for a moment by another test's open transaction).
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while self.manager.position() < done.position.unwrap() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the projection is stuck"
            );
            self.manager.catch_up().await.unwrap();
        }
    }

    async fn place(&self, number: u32, customer: &str, lines: Vec<Line>) {
        self.execute(
            number,
            OrderCommand::Place {
                customer: customer.into(),
                lines,
            },
        )
        .await;
        self.clock.advance(DAY);
    }
}

fn ids(views: &[OrderView]) -> Vec<&str> {
    views.iter().map(|view| view.order_id.as_str()).collect()
}

#[tokio::test]
async fn a_customers_orders_come_newest_first_with_their_details() {
    let f = Fixture::new().await;
    f.place(
        1,
        "ada",
        vec![Line::new("book", 2, 2500), Line::new("pen", 1, 350)],
    )
    .await;
    f.place(2, "grace", vec![Line::new("lamp", 1, 4000)]).await;
    f.place(3, "ada", vec![Line::new("notebook", 3, 400)]).await;
    f.place(4, "ada", vec![Line::new("ink", 1, 900)]).await;

    let ada = f.queries.orders_of("ada", 10).await.unwrap();
    assert_eq!(ids(&ada), ["order-4", "order-3", "order-1"]);
    assert_eq!(
        ids(&f.queries.orders_of("ada", 2).await.unwrap()),
        ["order-4", "order-3"]
    );
    assert_eq!(
        ids(&f.queries.orders_of("nobody", 10).await.unwrap()),
        Vec::<&str>::new()
    );

    let first = f.queries.order("order-1").await.unwrap().unwrap();
    assert_eq!(first.customer, "ada");
    assert_eq!(first.total, 2 * 2500 + 350);
    assert_eq!(first.status, Status::Placed);
    assert_eq!(first.placed_at, "2025-03-01T09:00:00.000000Z");
    assert_eq!(f.queries.order("order-9").await.unwrap(), None);
}

#[tokio::test]
async fn shipping_and_cancelling_update_the_history_and_a_rebuild_agrees() {
    let f = Fixture::new().await;
    f.place(1, "ada", vec![Line::new("book", 1, 2500)]).await;
    f.place(2, "ada", vec![Line::new("lamp", 1, 4000)]).await;
    f.execute(1, OrderCommand::Ship).await;
    f.execute(
        2,
        OrderCommand::Cancel {
            reason: "too dark".into(),
        },
    )
    .await;

    let shipped = f.queries.order("order-1").await.unwrap().unwrap();
    assert_eq!(shipped.status, Status::Shipped);
    let cancelled = f.queries.order("order-2").await.unwrap().unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    assert_eq!(cancelled.cancel_reason.as_deref(), Some("too dark"));
    let stream = f.orders.stream_id(2).unwrap();
    let refused = f.orders.execute(&stream, OrderCommand::Ship).await;
    assert!(matches!(
        refused,
        Err(RepositoryError::Rejected(OrderError::Closed(
            Status::Cancelled
        )))
    ));

    let before = f.queries.orders_of("ada", 10).await.unwrap();
    let reached = f.manager.position();
    let mut replayed = f.manager.rebuild().await.unwrap();
    while f.manager.position() < reached {
        replayed += f.manager.catch_up().await.unwrap();
    }
    assert_eq!(replayed, 4);
    assert_eq!(f.queries.orders_of("ada", 10).await.unwrap(), before);
}

#[tokio::test]
async fn a_running_manager_gives_read_your_writes_and_queries_never_touch_the_event_store() {
    let f = Fixture::new().await;
    let running = f.manager.start();
    let stream = f.orders.stream_id(7).unwrap();
    let place = OrderCommand::Place {
        customer: "ada".into(),
        lines: vec![Line::new("pen", 4, 350)],
    };
    let done = f.orders.execute(&stream, place).await.unwrap();
    f.manager
        .wait_for(done.position.unwrap(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        f.queries.order("order-7").await.unwrap().unwrap().total,
        1400
    );
    f.manager.shutdown();
    running.await.unwrap().unwrap();

    // A restarted manager resumes from its checkpoint: nothing to replay.
    assert_eq!(Fixture::manager(&f.app).catch_up().await.unwrap(), 0);

    // The read side stands alone: with the event store's schema gone, the
    // queries still answer.
    f.events_schema.drop_now().await.unwrap();
    assert_eq!(
        ids(&f.queries.orders_of("ada", 10).await.unwrap()),
        ["order-7"]
    );
}
