//! The migration on a real PostgreSQL, each test in schemas of its own
//! (`TestSchema`, dropped at the end): the import, both sides running
//! side by side, a rebuild and a rollback.

use catalog::import::{ImportReport, import};
use catalog::product::{ProductEvent, product_stream};
use catalog::service::ProductService;
use catalog::verify::compare;
use catalog::{Deployment, MigrationError};
use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust_testing::fixtures::TestSchema;
use legacy_catalog::{Catalog, Product};

/// A deployment with the old application's table, in a new schema. The
/// schema guard comes last, so it is dropped after the pools.
async fn deployment() -> (Deployment, TestSchema) {
    let schema = TestSchema::new();
    let app = Deployment::connect(schema.url(), schema.name())
        .await
        .unwrap();
    app.legacy.migrate().await.unwrap();
    (app, schema)
}

/// The rows the old application left: ids 1, 2 and 3.
async fn seed(catalog: &Catalog) {
    for (name, cents) in [("Espresso cup", 1200), ("Grinder", 8900), ("Kettle", 4500)] {
        catalog.create(name, cents).await.unwrap();
    }
}

// ANCHOR: import
#[tokio::test]
async fn the_import_writes_one_stream_per_row_once() {
    let (app, _schema) = deployment().await;
    seed(&app.legacy).await;

    // A page size of 2: the rows come in two pages.
    let first = import(&app.pool, &app.events, 2).await.unwrap();
    let all_new = ImportReport {
        rows: 3,
        imported: 3,
        already_imported: 0,
    };
    assert_eq!(first, all_new);
    let again = import(&app.pool, &app.events, 2).await.unwrap();
    let nothing_new = ImportReport {
        rows: 3,
        imported: 0,
        already_imported: 3,
    };
    assert_eq!(again, nothing_new);

    // Each stream holds one event: the row as it was, and where it came from.
    let kettle = app
        .events
        .load_stream(&product_stream(3).unwrap(), 0)
        .await
        .unwrap();
    assert_eq!(kettle.len(), 1);
    let event = decode::<ProductEvent>(&kettle[0], &Upcasters::new()).unwrap();
    let row = ProductEvent::Imported {
        name: "Kettle".into(),
        price_cents: 4500,
    };
    assert_eq!(event, Some(row));
    assert_eq!(kettle[0].metadata.headers["imported-from"], "products");

    // A row the last run did not see (written after it, or after the
    // point where it was interrupted) is all the next run imports.
    app.legacy.create("Scale", 2900).await.unwrap();
    let resumed = import(&app.pool, &app.events, 2).await.unwrap();
    let one_new = ImportReport {
        rows: 4,
        imported: 1,
        already_imported: 3,
    };
    assert_eq!(resumed, one_new);
    let comparison = compare(&app.legacy, &app.events).await.unwrap();
    assert!(comparison.agree(), "{comparison}");
    assert_eq!(comparison.streams, 4);
}
// ANCHOR_END: import

// ANCHOR: side-by-side
/// One operation of the old API, run on both sides.
#[derive(Debug, Clone, Copy)]
enum Op {
    Create(&'static str, i64),
    Update(i64, &'static str, i64),
    Delete(i64),
}

/// Accepted (`true`) or refused, by the old code on its table.
async fn old_side(catalog: &Catalog, op: Op) -> bool {
    match op {
        Op::Create(name, cents) => match catalog.create(name, cents).await {
            Ok(_) => true,
            Err(error) => {
                let code = error.as_database_error().and_then(|e| e.code());
                assert_eq!(code.as_deref(), Some("23514"), "{error}");
                false
            }
        },
        Op::Update(id, name, cents) => match catalog.update(id, name, cents).await {
            Ok(updated) => updated.is_some(),
            Err(error) => {
                let code = error.as_database_error().and_then(|e| e.code());
                assert_eq!(code.as_deref(), Some("23514"), "{error}");
                false
            }
        },
        Op::Delete(id) => catalog.delete(id).await.unwrap(),
    }
}

/// Accepted (`true`) or refused, by the new writer.
async fn new_side(service: &ProductService, op: Op) -> bool {
    let written = match op {
        Op::Create(name, cents) => service.create(name, cents).await.map(|_| 1),
        Op::Update(id, name, cents) => service.update(id, name, cents).await,
        Op::Delete(id) => service.delete(id).await,
    };
    match written {
        Ok(_) => true,
        Err(MigrationError::Rejected { .. }) => false,
        Err(error) => panic!("{op:?}: {error}"),
    }
}

#[tokio::test]
async fn after_the_same_commands_both_sides_agree() {
    // The old application, untouched, and the migrated one.
    let (old, _old_schema) = deployment().await;
    let (new, _new_schema) = deployment().await;
    seed(&old.legacy).await;
    seed(&new.legacy).await;
    import(&new.pool, &new.events, 100).await.unwrap();
    let (service, view) = (new.service(), new.legacy_view());

    let script = [
        Op::Update(1, "Espresso cup", 1450),
        Op::Create("Milk jug", 2200),
        Op::Delete(3),
        Op::Update(3, "Kettle", 4000), // deleted: refused by both
        Op::Update(2, "Grinder", -5),  // the CHECK, and the aggregate's rule
        Op::Create("Scale", -1),       // refused, but both use up id 5
        Op::Create("Scale", 2900),
        Op::Update(4, "Milk jug, 600 ml", 2200),
        Op::Delete(1),
    ];
    for op in script {
        assert_eq!(
            old_side(&old.legacy, op).await,
            new_side(&service, op).await,
            "{op:?}"
        );
        view.catch_up().await.unwrap();
        let (old_rows, new_rows) = (
            old.legacy.list().await.unwrap(),
            new.legacy.list().await.unwrap(),
        );
        assert_eq!(old_rows, new_rows, "after {op:?}");
    }
    let expected = vec![
        Product {
            id: 2,
            name: "Grinder".into(),
            price_cents: 8900,
        },
        Product {
            id: 4,
            name: "Milk jug, 600 ml".into(),
            price_cents: 2200,
        },
        Product {
            id: 6,
            name: "Scale".into(),
            price_cents: 2900,
        },
    ];
    assert_eq!(new.legacy.list().await.unwrap(), expected);
    let comparison = compare(&new.legacy, &new.events).await.unwrap();
    assert!(comparison.agree(), "{comparison}");
    assert_eq!((comparison.streams, comparison.deleted), (5, 2));

    // The table is a read model now: rebuilt from the events, it is the same.
    view.rebuild().await.unwrap();
    assert_eq!(new.legacy.list().await.unwrap(), expected);
}
// ANCHOR_END: side-by-side

// ANCHOR: rollback
#[tokio::test]
async fn a_rollback_finds_the_table_complete_and_its_ids_unused() {
    let (app, _schema) = deployment().await;
    seed(&app.legacy).await;
    import(&app.pool, &app.events, 100).await.unwrap();
    let milk_jug = app.service().create("Milk jug", 2200).await.unwrap();
    app.service().update(2, "Grinder", 9900).await.unwrap();
    app.legacy_view().catch_up().await.unwrap();

    // Roll back: the new writer stops, the old code writes again. Every
    // write of the new side is in the table, and the next id is a new one.
    let grinder = app.legacy.get(2).await.unwrap().unwrap();
    assert_eq!(grinder.price_cents, 9900);
    assert_eq!(
        app.legacy.get(milk_jug).await.unwrap().unwrap().name,
        "Milk jug"
    );
    let scale = app.legacy.create("Scale", 2900).await.unwrap();
    assert_eq!(scale.id, milk_jug + 1);
}
// ANCHOR_END: rollback
