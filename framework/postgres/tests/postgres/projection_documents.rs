//! Document tables: writes through a unit of work, queries (containment,
//! ordering, limit, offset), errors, and an indexed containment query over
//! 100,000 rows whose plan uses the GIN index.

use composable_rust_core::projection::{ProjectionStore, QueryableProjectionStore};
use composable_rust_core::{CodedError, ProjectionError};
use composable_rust_postgres::{Document, DocumentTable, PostgresError, SortOrder};
use composable_rust_testing::fixtures::TestSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::projection_support::fresh_projection_store;
use super::support;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    customer: String,
    total: u64,
    status: String,
}

fn order(customer: &str, total: u64, status: &str) -> Order {
    Order {
        customer: customer.into(),
        total,
        status: status.into(),
    }
}

#[tokio::test]
async fn documents_are_written_through_a_unit_of_work_and_queried() {
    let _gate = support::shared_gate().await;
    let test = fresh_projection_store().await;
    let store = &test.store;
    let orders = DocumentTable::new(store, "orders").unwrap();
    assert_eq!(orders.name(), "orders");
    assert_eq!(
        orders.qualified_name(),
        format!("\"{}\".\"orders\"", store.schema())
    );
    orders.ensure().await.unwrap();
    orders.ensure().await.expect("ensure is idempotent");

    let mut tx = store.begin().await.unwrap();
    orders
        .upsert(&mut tx, "o1", &order("ada", 30, "placed"))
        .await
        .unwrap();
    orders
        .upsert(&mut tx, "o2", &order("ada", 120, "shipped"))
        .await
        .unwrap();
    orders
        .upsert(&mut tx, "o3", &order("grace", 75, "placed"))
        .await
        .unwrap();
    orders
        .upsert(&mut tx, "o4", &order("ada", 5, "placed"))
        .await
        .unwrap();
    orders
        .upsert(&mut tx, "o1", &order("ada", 31, "placed"))
        .await
        .unwrap();
    orders.delete(&mut tx, "o4").await.unwrap();
    // The unit of work sees its own writes; queries see committed data only.
    assert_eq!(
        orders.get::<Order>(&mut tx, "o1").await.unwrap(),
        Some(order("ada", 31, "placed"))
    );
    assert_eq!(orders.get::<Order>(&mut tx, "o4").await.unwrap(), None);
    assert_eq!(orders.query().count().await.unwrap(), 0);
    store.commit(tx).await.unwrap();

    assert_eq!(orders.query().count().await.unwrap(), 3);
    assert_eq!(
        orders.fetch::<Order>("o2").await.unwrap(),
        Some(order("ada", 120, "shipped"))
    );
    assert_eq!(orders.fetch::<Order>("o4").await.unwrap(), None);

    // Containment, ordering by a number (numerically), limit and offset.
    let ada = orders.query().contains(json!({ "customer": "ada" }));
    assert_eq!(ada.count().await.unwrap(), 2);
    let biggest_first: Vec<Order> = ada
        .clone()
        .order_by("total", SortOrder::Descending)
        .fetch_as()
        .await
        .unwrap();
    assert_eq!(
        biggest_first,
        [order("ada", 120, "shipped"), order("ada", 31, "placed")]
    );
    let by_total: Vec<String> = orders
        .query()
        .order_by("total", SortOrder::Ascending)
        .fetch_all()
        .await
        .unwrap()
        .into_iter()
        .map(|document| document.id)
        .collect();
    assert_eq!(by_total, ["o1", "o3", "o2"]);
    let page = orders
        .query()
        .order_by("total", SortOrder::Ascending)
        .offset(1)
        .limit(1)
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        page,
        [Document {
            id: "o3".into(),
            data: json!({ "customer": "grace", "total": 75, "status": "placed" }),
        }]
    );
    assert_eq!(page[0].deserialize::<Order>().unwrap().total, 75);
    // Through the QueryableProjectionStore trait, on the store's pool.
    let placed = store
        .query(&orders.query().contains(json!({ "status": "placed" })))
        .await
        .unwrap();
    assert_eq!(placed.len(), 2);
    // A field name is a bind parameter, never SQL.
    let odd = orders
        .query()
        .order_by("total'); DROP TABLE orders; --", SortOrder::Ascending)
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(odd.len(), 3);

    // clear() (a projection's reset) deletes every document in the unit of work.
    let mut tx = store.begin().await.unwrap();
    orders
        .upsert(&mut tx, "o9", &order("x", 1, "placed"))
        .await
        .unwrap();
    assert_eq!(orders.clear(&mut tx).await.unwrap(), 3);
    assert_eq!(orders.get::<Order>(&mut tx, "o9").await.unwrap(), None);
    store.commit(tx).await.unwrap();
    assert_eq!(orders.query().count().await.unwrap(), 0);
}

#[tokio::test]
async fn document_errors_have_codes_and_say_what_to_do() {
    let _gate = support::shared_gate().await;
    let test = fresh_projection_store().await;
    let store = &test.store;

    let error = DocumentTable::new(store, "projection_data").unwrap_err();
    assert!(matches!(error, PostgresError::InvalidTableName { .. }));
    assert_eq!(error.code().as_str(), "CR-E0110");
    let error = DocumentTable::new(store, "Orders; DROP").unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0110");

    let missing = DocumentTable::new(store, "not_ensured").unwrap();
    let error = missing.query().fetch_all().await.unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0111", "{error}");
    assert!(
        error.to_string().contains("DocumentTable::ensure()"),
        "{error}"
    );
    // A missing table is a setup problem: the manager stops and says so.
    assert_eq!(
        error.class(),
        composable_rust_core::ErrorClass::Configuration
    );

    let orders = DocumentTable::new(store, "orders").unwrap();
    orders.ensure().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let error = orders
        .upsert(&mut tx, "o1", &json!({ "note": "a\u{0}b" }))
        .await
        .unwrap_err();
    assert!(matches!(error, ProjectionError::Apply { .. }), "{error:?}");
    orders
        .upsert(&mut tx, "o1", &json!({ "total": "not a number" }))
        .await
        .unwrap();
    let error = orders.get::<Order>(&mut tx, "o1").await.unwrap_err();
    assert!(
        matches!(error, ProjectionError::Serialization { .. }),
        "{error:?}"
    );
    drop(tx);

    // ensure() before the store's migrate(): the schema is missing.
    let schema = TestSchema::new();
    let unmigrated = composable_rust_postgres::PostgresProjectionStore::new(store.pool().clone())
        .with_schema(schema.name())
        .unwrap();
    let error = DocumentTable::new(&unmigrated, "orders")
        .unwrap()
        .ensure()
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CR-E0107", "{error}");
}

/// 100,000 orders of 1,000 customers, loaded with one INSERT ... SELECT
/// generate_series; a containment query returns exactly one customer's
/// orders and its plan uses the GIN index.
#[tokio::test]
async fn an_indexed_containment_query_over_100_000_rows_uses_the_gin_index() {
    let _gate = support::shared_gate().await;
    let test = fresh_projection_store().await;
    let store = &test.store;
    let orders = DocumentTable::new(store, "big_orders").unwrap();
    orders.ensure().await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO {} (id, data) \
         SELECT 'order-' || i, jsonb_build_object( \
             'customer', 'c-' || (i % 1000), \
             'total', i, \
             'status', CASE WHEN i % 3 = 0 THEN 'shipped' ELSE 'placed' END) \
         FROM generate_series(1, 100000) AS i",
        orders.qualified_name()
    ))
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query(&format!("ANALYZE {}", orders.qualified_name()))
        .execute(store.pool())
        .await
        .unwrap();

    let query = orders
        .query()
        .contains(json!({ "customer": "c-42", "status": "shipped" }))
        .order_by("total", SortOrder::Descending)
        .limit(10);
    let found: Vec<Order> = query.fetch_as().await.unwrap();
    // Customer 42's orders are 42, 1042, ..., 99042; shipped: multiples of 3.
    let expected: Vec<u64> = (0..100)
        .map(|k| 42 + 1000 * k)
        .filter(|i| i % 3 == 0)
        .rev()
        .take(10)
        .collect();
    let totals: Vec<u64> = found.iter().map(|o| o.total).collect();
    assert_eq!(totals, expected);
    assert!(
        found
            .iter()
            .all(|o| o.customer == "c-42" && o.status == "shipped")
    );
    assert_eq!(
        orders
            .query()
            .contains(json!({ "customer": "c-42" }))
            .count()
            .await
            .unwrap(),
        100
    );

    let plan = query.explain().await.unwrap();
    assert!(
        plan.contains("big_orders_data_idx") && plan.contains("Bitmap Index Scan"),
        "the plan should use the GIN index:\n{plan}"
    );
}
