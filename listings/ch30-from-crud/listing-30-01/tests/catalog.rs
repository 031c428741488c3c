//! The old catalog on a real PostgreSQL, in a schema of its own
//! (`TestSchema`, dropped at the end): this is the behaviour the
//! event-sourced catalog must keep.

use composable_rust_testing::fixtures::TestSchema;
use legacy_catalog::{Catalog, Product, connect};

/// A catalog in a fresh schema. The schema guard is returned last, so it
/// is dropped after the pool.
async fn catalog() -> (Catalog, TestSchema) {
    let schema = TestSchema::new();
    schema.create().await.unwrap();
    let pool = connect(schema.url(), schema.name()).await.unwrap();
    let catalog = Catalog::new(pool);
    catalog.migrate().await.unwrap();
    (catalog, schema)
}

// ANCHOR: tests
#[tokio::test]
async fn a_product_is_created_updated_and_deleted() {
    let (catalog, _schema) = catalog().await;
    let cup = catalog.create("Espresso cup", 1200).await.unwrap();
    assert_eq!(cup.name, "Espresso cup");

    let updated = catalog.update(cup.id, "Espresso cup", 1450).await.unwrap();
    assert_eq!(updated.unwrap().price_cents, 1450);
    assert_eq!(
        catalog.get(cup.id).await.unwrap().unwrap().price_cents,
        1450
    );

    assert!(catalog.delete(cup.id).await.unwrap());
    assert_eq!(catalog.get(cup.id).await.unwrap(), None);
    assert!(!catalog.delete(cup.id).await.unwrap(), "already gone");
}

#[tokio::test]
async fn ids_come_from_the_table_and_the_list_is_in_id_order() {
    let (catalog, _schema) = catalog().await;
    let grinder = catalog.create("Grinder", 8900).await.unwrap();
    let kettle = catalog.create("Kettle", 4500).await.unwrap();
    assert_eq!(kettle.id, grinder.id + 1);
    assert_eq!(catalog.list().await.unwrap(), vec![grinder, kettle]);
}

#[tokio::test]
async fn the_database_refuses_a_negative_price_and_an_unknown_id() {
    let (catalog, _schema) = catalog().await;
    let refused = catalog.create("Mug", -1).await.unwrap_err();
    let code = refused.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("23514"), "check_violation: {refused}");

    assert_eq!(
        catalog.update(999, "Mug", 900).await.unwrap(),
        None::<Product>
    );
}
// ANCHOR_END: tests
