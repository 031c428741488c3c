//! The account service on PostgreSQL. Needs `DATABASE_URL`; each run works
//! in a schema of its own and drops it at the end.

use composable_rust::testing::services::database_url;
use composable_rust::uuid::Uuid;
use listing_14_01::service::Request;
use listing_14_02::postgres_service;
use sqlx::PgPool;

// ANCHOR: test
#[tokio::test]
async fn the_service_reads_its_own_writes_on_postgresql() {
    let pool = PgPool::connect(&database_url()).await.unwrap();
    let schema = format!("listing_14_02_{}", Uuid::new_v4().simple());
    let (service, summaries) = postgres_service(pool.clone(), &schema).await.unwrap();
    let running = summaries.start();

    let opened = service
        .handle(Request::Open {
            id: 1,
            owner: "Ada".into(),
        })
        .await;
    assert_eq!(opened.status, 201);
    let deposited = service
        .handle(Request::Deposit { id: 1, amount: 100 })
        .await;
    assert_eq!(deposited.status, 200);
    assert_eq!(deposited.body["balance"], 100);
    let overdraft = service
        .handle(Request::Withdraw { id: 1, amount: 500 })
        .await;
    assert_eq!(overdraft.status, 422);

    summaries.shutdown();
    running.await.unwrap().unwrap();
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}
// ANCHOR_END: test
