//! The stock read model in PostgreSQL: queries per sku and per warehouse,
//! read-your-writes with `wait_for`, and a rebuild that gives the same
//! documents.

mod common;

use std::time::Duration;

use common::{harness, reservation};
use inventory::StockLevel;

fn row(level: &StockLevel) -> (&str, &str, u32, u32, u32, u32) {
    (
        level.sku.as_str(),
        level.warehouse.as_str(),
        level.on_hand,
        level.reserved,
        level.available,
        level.shipped,
    )
}

#[tokio::test]
async fn stock_by_sku_and_by_warehouse() {
    let h = harness().await;
    let inv = &h.inventory;
    inv.register("FORK", "Fork", 0, 10).await.unwrap();
    inv.register("KNIFE", "Knife", 0, 10).await.unwrap();
    inv.receive("FORK", "east", 10).await.unwrap();
    inv.receive("FORK", "west", 4).await.unwrap();
    inv.receive("KNIFE", "east", 7).await.unwrap();
    inv.reserve(&reservation("r1", "FORK", "east", 3))
        .await
        .unwrap();
    inv.reserve(&reservation("r2", "KNIFE", "east", 2))
        .await
        .unwrap();
    inv.commit("KNIFE", "r2").await.unwrap();
    inv.process().await.unwrap();

    let models = inv.read_models();
    let forks = models.stock_of_sku("FORK").await.unwrap();
    assert_eq!(
        forks.iter().map(row).collect::<Vec<_>>(),
        [("FORK", "east", 10, 3, 7, 0), ("FORK", "west", 4, 0, 4, 0)]
    );
    assert_eq!(forks[0].name, "Fork");
    let east = models.stock_in_warehouse("east").await.unwrap();
    assert_eq!(
        east.iter().map(row).collect::<Vec<_>>(),
        [("FORK", "east", 10, 3, 7, 0), ("KNIFE", "east", 5, 0, 5, 2)]
    );
    assert!(models.stock_in_warehouse("north").await.unwrap().is_empty());
    assert!(models.stock_level("SPOON", "east").await.unwrap().is_none());
}

#[tokio::test]
async fn a_running_projection_serves_read_your_writes_and_rebuilds_the_same() {
    let h = harness().await;
    let inv = &h.inventory;
    inv.register("PLATE", "Plate", 0, 10).await.unwrap();
    inv.receive("PLATE", "east", 9).await.unwrap();

    // A running manager, and a wait for the position of our own write.
    let running = inv.stock_projection().start();
    let stream = composable_rust::StreamId::new("product-PLATE").unwrap();
    inv.reserve(&reservation("r1", "PLATE", "east", 4))
        .await
        .unwrap();
    let last = inv
        .store()
        .load_stream(&stream, 0)
        .await
        .unwrap()
        .pop()
        .unwrap();
    inv.stock_projection()
        .wait_for(last.position, Duration::from_secs(10))
        .await
        .unwrap();
    let level = inv
        .read_models()
        .stock_level("PLATE", "east")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((level.reserved, level.available), (4, 5));
    inv.stock_projection().shutdown();
    running.await.unwrap().unwrap();

    let before = inv.read_models().all_stock().await.unwrap();
    inv.stock_projection().rebuild().await.unwrap();
    assert_eq!(inv.read_models().all_stock().await.unwrap(), before);
}
