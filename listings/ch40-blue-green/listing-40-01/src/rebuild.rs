//! Rebuilding the order totals into a new version while the live one
//! serves, and what the test checks.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::postgres::{BlueGreen, BlueGreenError, PostgresEventStore};
use composable_rust::projection::blue_green::RebuildProgress;
use composable_rust::{Clock, ProjectionManager};
use sqlx::PgPool;

use crate::totals::OrderTotals;

// ANCHOR: setup
/// The versions of the order totals' read model: readers query the
/// schema `order_totals`, versions live in `order_totals_v1`, `_v2`...
pub async fn versions(pool: PgPool, clock: Arc<dyn Clock>) -> Result<BlueGreen, BlueGreenError> {
    let versions = BlueGreen::new(pool, "order_totals")?
        // Keep the replaced version for 10 minutes: readers still on it
        // finish, and switching back by hand stays possible.
        .with_grace_period(Duration::from_secs(600))
        .with_clock(clock);
    versions.migrate().await?;
    Ok(versions)
}
// ANCHOR_END: setup

// ANCHOR: progress
/// One line of a progress bar: `[#####-----]  50%  500/1000 events  2000/s  ETA 0s`.
pub fn render(progress: &RebuildProgress) -> String {
    const WIDTH: usize = 10;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let filled = (progress.fraction() * WIDTH as f64).round() as usize;
    let eta = progress
        .eta()
        .map_or_else(|| "?".to_owned(), |eta| format!("{}s", eta.as_secs()));
    format!(
        "[{}{}] {:>3.0}%  {}/{} events  {:.0}/s  ETA {eta}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        progress.fraction() * 100.0,
        progress.events_applied,
        progress.events_total,
        progress.events_per_second(),
    )
}
// ANCHOR_END: progress

// ANCHOR: rebuild
/// Rebuilds the totals with the new code into a new version, reporting
/// progress, then moves the live manager over to it; returns the new
/// manager, running.
pub async fn deploy_version_2(
    versions: &BlueGreen,
    events: &PostgresEventStore,
    live: ProjectionManager<OrderTotals>,
) -> Result<ProjectionManager<OrderTotals>, BlueGreenError> {
    // A progress bar, rendered while the load runs.
    let mut progress = versions.progress();
    let bar = tokio::spawn(async move {
        while progress.changed().await.is_ok() {
            let now = *progress.borrow_and_update();
            println!("{}", render(&now));
            if now.done {
                break;
            }
        }
    });

    // The live version keeps serving, and its manager keeps applying new
    // events, while version n+1 loads. The switch is one transaction.
    let new_code = OrderTotals { counts_lines: true };
    let switched = versions.rebuild(&new_code, Arc::new(events.clone())).await;
    match switched {
        Ok(_) => drop(bar.await),
        Err(_) => bar.abort(),
    }
    let switched = switched?;
    println!(
        "readers switched from version {:?} to {}",
        switched.from, switched.to
    );

    // The old manager keeps the old version: stop it, and keep the new
    // version up to date from its checkpoint on.
    live.shutdown();
    let store = Arc::new(versions.live_store().await?);
    let manager = ProjectionManager::new(new_code, store, events.clone());
    manager.start();
    Ok(manager)
}
// ANCHOR_END: rebuild

#[cfg(test)]
mod tests {
    use composable_rust::clock::TestClock;
    use composable_rust::prelude::*;
    use composable_rust::{CodedError, ExpectedVersion, NewEvent};
    use composable_rust_testing::fixtures::TestDatabase;
    use serde_json::json;

    use super::*;
    use crate::totals::OrderTotal;

    async fn add_lines(events: &PostgresEventStore, order: &str, cents: &[u64]) {
        let lines = cents
            .iter()
            .map(|c| NewEvent::new("LineAdded", json!({ "cents": c })))
            .collect();
        let stream = StreamId::new(order).unwrap();
        events
            .append(&stream, ExpectedVersion::Any, lines)
            .await
            .unwrap();
    }

    // ANCHOR: test
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_switch_to_version_2_and_version_1_goes_after_the_grace_period()
    -> Result<(), Box<dyn std::error::Error>> {
        let db = TestDatabase::new().await;
        let pool = db.pool().await;
        let events = PostgresEventStore::new(pool.clone());
        events.migrate().await?;
        add_lines(&events, "order-1", &[250, 100]).await;

        let clock = TestClock::new();
        let versions = versions(pool.clone(), Arc::new(clock.clone())).await?;
        // Version 1: the first rebuild creates it; its manager follows.
        versions
            .rebuild(
                &OrderTotals {
                    counts_lines: false,
                },
                Arc::new(events.clone()),
            )
            .await?;
        let live = ProjectionManager::new(
            OrderTotals {
                counts_lines: false,
            },
            Arc::new(versions.live_store().await?),
            events.clone(),
        );
        live.start();
        let reader = versions.reader();
        let v1: Option<OrderTotal> = reader.get_json("order:order-1").await?;
        assert_eq!(
            v1,
            Some(OrderTotal {
                total_cents: 350,
                lines: 0
            })
        );

        let manager = deploy_version_2(&versions, &events, live).await?;
        // A line added after the switch reaches version 2 through its manager.
        let stream = StreamId::new("order-1")?;
        let line = NewEvent::new("LineAdded", json!({ "cents": 50 }));
        let appended = events
            .append(&stream, ExpectedVersion::Any, vec![line])
            .await?;
        manager
            .wait_for(appended.last_position, Duration::from_secs(10))
            .await?;
        let v2: Option<OrderTotal> = reader.get_json("order:order-1").await?;
        assert_eq!(
            v2,
            Some(OrderTotal {
                total_cents: 400,
                lines: 3
            })
        );

        // Version 1 stays for the grace period, by the clock.
        assert!(versions.drop_retired().await?.is_empty());
        clock.advance(Duration::from_secs(600));
        assert_eq!(versions.drop_retired().await?.len(), 1);
        manager.shutdown();
        Ok(())
    }
    // ANCHOR_END: test

    // ANCHOR: failure
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_rebuild_leaves_readers_on_the_live_version()
    -> Result<(), Box<dyn std::error::Error>> {
        let db = TestDatabase::new().await;
        let pool = db.pool().await;
        let events = PostgresEventStore::new(pool.clone());
        events.migrate().await?;
        add_lines(&events, "order-1", &[250]).await;
        let versions = versions(pool.clone(), Arc::new(TestClock::new())).await?;
        versions
            .rebuild(
                &OrderTotals {
                    counts_lines: false,
                },
                Arc::new(events.clone()),
            )
            .await?;

        // An event version 2 cannot apply (no price): the rebuild stops.
        let stream = StreamId::new("order-2")?;
        let bad = NewEvent::new("LineAdded", json!({ "price": "free" }));
        events
            .append(&stream, ExpectedVersion::Any, vec![bad])
            .await?;
        let error = versions
            .rebuild(
                &OrderTotals { counts_lines: true },
                Arc::new(events.clone()),
            )
            .await
            .unwrap_err();
        assert_eq!(error.code().as_str(), "CR-E0131");

        // Readers still see version 1, the only version left.
        let reader = versions.reader();
        let v1: Option<OrderTotal> = reader.get_json("order:order-1").await?;
        assert_eq!(
            v1,
            Some(OrderTotal {
                total_cents: 250,
                lines: 0
            })
        );
        assert_eq!(versions.versions().await?.len(), 1);
        Ok(())
    }
    // ANCHOR_END: failure

    #[test]
    fn the_bar_shows_share_rate_and_eta() {
        let progress = RebuildProgress {
            events_applied: 500,
            events_total: 1_000,
            elapsed: Duration::from_millis(250),
            ..RebuildProgress::default()
        };
        assert_eq!(
            render(&progress),
            "[#####-----]  50%  500/1000 events  2000/s  ETA 0s"
        );
    }
}
