//! The account summaries projection, fed events by the test harness: in
//! memory, no manager, no waiting.

use bank::account::AccountEvent;
use bank::summaries::{AccountSummaries, AccountSummary, BankTotals, TOTALS_KEY};
use composable_rust::InMemoryProjectionStore;
use composable_rust::prelude::*;

fn harness() -> ProjectionTestHarness<AccountSummaries<InMemoryProjectionStore>> {
    ProjectionTestHarness::new(AccountSummaries::new())
}

#[tokio::test]
async fn keeps_a_summary_per_account_and_bank_totals() {
    let mut harness = harness();
    harness
        .given_events(
            "account-1",
            [
                AccountEvent::Opened {
                    owner: "Ada".into(),
                },
                AccountEvent::Deposited { amount: 100 },
                AccountEvent::Withdrawn { amount: 30 },
            ],
        )
        .await
        .given_events(
            "account-2",
            [
                AccountEvent::Opened {
                    owner: "Grace".into(),
                },
                AccountEvent::Deposited { amount: 5 },
            ],
        )
        .await;

    let ada: AccountSummary = harness.get_json("account-summary:account-1").await.unwrap();
    assert_eq!(
        ada,
        AccountSummary {
            owner: "Ada".into(),
            balance: 70,
            transactions: 2
        }
    );
    let totals: BankTotals = harness.get_json(TOTALS_KEY).await.unwrap();
    assert_eq!(
        totals,
        BankTotals {
            accounts: 2,
            deposits: 105
        }
    );
    harness.assert_rebuild_matches().await;
}

#[tokio::test]
async fn ignores_other_aggregates() {
    let mut harness = harness();
    harness
        .given_events("loan-1", [AccountEvent::Deposited { amount: 1 }])
        .await;
    assert!(harness.store().is_empty());
}
