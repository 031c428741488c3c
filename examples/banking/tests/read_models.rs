//! The read models on the real servers: statements by date range
//! (PostgreSQL documents), daily totals (Redis counters), balances
//! (PostgreSQL), each run by its `ProjectionManager`.

mod common;

use std::time::Duration;

use banking::error::codes;
use banking::read_models::daily_totals::DailyTotals;
use chrono::NaiveDate;
use composable_rust::prelude::*;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, day).unwrap()
}

/// Three days of business (3, 4 and 5 March): Ada deposits, sends Bob a
/// transfer, sends one to a closed account (refunded), withdraws; Bob
/// withdraws.
async fn three_days(pg: &common::PgBank) {
    let bank = &pg.bank;
    bank.open("ada", "Ada", 5_000).await.unwrap();
    bank.open("bob", "Bob", 0).await.unwrap();
    bank.open("shut", "Shut", 0).await.unwrap();
    bank.close("shut").await.unwrap();
    bank.deposit("ada", 10_000).await.unwrap();
    bank.deposit("bob", 1_000).await.unwrap();

    pg.clock.advance(DAY);
    bank.transfer("t-1", "ada", "bob", 2_500).await.unwrap();
    bank.transfer("t-2", "ada", "shut", 700).await.unwrap();
    bank.process().await.unwrap();

    pg.clock.advance(DAY);
    bank.withdraw("ada", 12_000).await.unwrap();
    bank.withdraw("bob", 500).await.unwrap();
    bank.process().await.unwrap();
}

#[tokio::test]
async fn a_statement_lists_the_lines_of_one_account_between_two_dates() {
    let pg = common::pg_bank().await;
    three_days(&pg).await;
    let (read_models, _prefix) = common::read_models(&pg).await;
    read_models.catch_up().await.unwrap();

    let described = |lines: Vec<banking::read_models::statements::StatementLine>| {
        lines
            .into_iter()
            .map(|line| {
                (
                    line.date.to_string(),
                    line.amount,
                    line.balance,
                    line.description,
                )
            })
            .collect::<Vec<_>>()
    };
    let all = read_models
        .statement("ada", date(1), date(31))
        .await
        .unwrap();
    assert_eq!(
        described(all),
        [
            ("2025-03-03".into(), 10_000, 10_000, "cash".into()),
            (
                "2025-03-04".into(),
                -2_500,
                7_500,
                "transfer t-1 to bob".into()
            ),
            (
                "2025-03-04".into(),
                -700,
                6_800,
                "transfer t-2 to shut".into()
            ),
            (
                "2025-03-04".into(),
                700,
                7_500,
                "refund of transfer t-2".into()
            ),
            ("2025-03-05".into(), -12_000, -4_500, "cash".into()),
        ]
    );
    // One day, both ends included; another account's lines never show.
    let day2 = read_models
        .statement("ada", date(4), date(4))
        .await
        .unwrap();
    assert_eq!(day2.len(), 3);
    assert!(
        day2.iter()
            .all(|line| line.account == "ada" && line.date == date(4))
    );
    let bob = read_models
        .statement("bob", date(4), date(5))
        .await
        .unwrap();
    assert_eq!(
        described(bob),
        [
            (
                "2025-03-04".into(),
                2_500,
                3_500,
                "transfer t-1 from ada".into()
            ),
            ("2025-03-05".into(), -500, 3_000, "cash".into()),
        ]
    );
    assert!(
        read_models
            .statement("ada", date(6), date(30))
            .await
            .unwrap()
            .is_empty()
    );

    let backwards = read_models
        .statement("ada", date(5), date(3))
        .await
        .unwrap_err();
    assert_eq!(
        backwards.code().as_str(),
        codes::INVALID_DATE_RANGE.as_str()
    );
}

#[tokio::test]
async fn daily_totals_count_each_movement_once_even_when_applied_again() {
    let pg = common::pg_bank().await;
    three_days(&pg).await;
    let (read_models, _prefix) = common::read_models(&pg).await;
    read_models.catch_up().await.unwrap();

    let expected = [
        DailyTotals {
            deposits: 11_000,
            deposit_count: 2,
            ..DailyTotals::default()
        },
        DailyTotals {
            transfers: 2_500,
            transfer_count: 1,
            refunds: 700,
            ..DailyTotals::default()
        },
        DailyTotals {
            withdrawals: 12_500,
            withdrawal_count: 2,
            ..DailyTotals::default()
        },
    ];
    for (day, totals) in [3, 4, 5].into_iter().zip(&expected) {
        assert_eq!(
            &read_models.daily_totals(date(day)).await.unwrap(),
            totals,
            "day {day}"
        );
    }
    assert_eq!(
        read_models.daily_totals(date(6)).await.unwrap(),
        DailyTotals::default()
    );

    // A rebuild resets the counters and applies every event again: the
    // same totals, not twice them.
    read_models.daily().rebuild().await.unwrap();
    read_models.catch_up().await.unwrap();
    for (day, totals) in [3, 4, 5].into_iter().zip(&expected) {
        assert_eq!(
            &read_models.daily_totals(date(day)).await.unwrap(),
            totals,
            "day {day}"
        );
    }
}

#[tokio::test]
async fn balances_follow_the_accounts_and_a_caller_can_read_its_own_write() {
    let pg = common::pg_bank().await;
    let (read_models, _prefix) = common::read_models(&pg).await;
    let running = read_models.start();
    three_days(&pg).await;

    // The managers run in the background; wait for the last write.
    let position = pg.bank.deposit("bob", 1).await.unwrap().unwrap();
    read_models
        .wait_for(position, Duration::from_secs(10))
        .await
        .unwrap();

    for account in ["ada", "bob", "shut"] {
        let read = read_models.balance(account).await.unwrap().unwrap();
        let written = pg.bank.account(account).await.unwrap();
        assert_eq!(read.balance, written.balance, "{account}");
        assert_eq!(read.overdraft_limit, written.overdraft_limit, "{account}");
    }
    let shut = read_models.balance("shut").await.unwrap().unwrap();
    assert!(shut.closed);
    assert_eq!(
        read_models.balance("ada").await.unwrap().unwrap().balance,
        -4_500
    );
    assert_eq!(read_models.balance("nobody").await.unwrap(), None);

    read_models.shutdown();
    for task in running {
        task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_daily_total_event_delivered_twice_counts_once() {
    use banking::read_models::daily_totals::{DailyTotalsProjection, daily_totals};
    use composable_rust::Position;
    use composable_rust::redis::RedisProjectionStore;
    use composable_rust_testing::fixtures::TestKeyPrefix;

    let pg = common::pg_bank().await;
    pg.bank.open("ada", "Ada", 0).await.unwrap();
    let deposited = pg.bank.deposit("ada", 1_234).await.unwrap().unwrap();
    let event = pg
        .events
        .read_all(Position::START, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|event| event.position == deposited)
        .unwrap();

    // Redis is at least once: the same event can come again after a lost
    // reply. Apply it twice, in two commits, as a redelivery would.
    let prefix = TestKeyPrefix::new();
    let store = RedisProjectionStore::connect(prefix.url(), prefix.as_str())
        .await
        .unwrap();
    let projection = DailyTotalsProjection::default();
    for _ in 0..2 {
        let mut tx = store.begin().await.unwrap();
        projection.apply(&event, &mut tx).await.unwrap();
        store.commit(tx).await.unwrap();
    }

    let totals = daily_totals(&store, date(3)).await.unwrap();
    assert_eq!((totals.deposits, totals.deposit_count), (1_234, 1));
}
