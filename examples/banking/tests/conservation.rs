//! The property the bank lives by: **money is conserved**. Whatever the
//! customers do, whichever transfers they ask for (to missing or closed
//! accounts, beyond their overdraft, the same id twice), in whatever order
//! the saga gets to see the events, with branches going offline and
//! deadlines passing, and with events delivered all over again:
//!
//! - no account ever goes below its overdraft limit;
//! - at every moment, the sum of the balances plus the money in flight
//!   (debited from a source, not yet credited or refunded) equals the cash
//!   deposited minus the cash withdrawn;
//! - no transfer is both credited and refunded, and nothing is credited
//!   that was not debited;
//! - once every branch is back and every deadline has passed, nothing is
//!   in flight: the balances add up to the cash exactly, and every
//!   transfer has ended.
//!
//! The property runs many cases on the **in-memory event store** (the same
//! bank code, milliseconds per case), and a few cases of the same scenario
//! on **PostgreSQL**.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use banking::{Bank, ServiceError, TransferStatus};
use composable_rust::TestClock;
use proptest::prelude::*;

/// The accounts; the last one is never opened.
const ACCOUNTS: [&str; 5] = ["a0", "a1", "a2", "a3", "ghost"];
const OPENED: usize = 4;

/// One thing that happens.
#[derive(Debug, Clone)]
enum Op {
    Deposit {
        account: usize,
        amount: i64,
    },
    Withdraw {
        account: usize,
        amount: i64,
    },
    /// Few ids, so the same id comes back (the same or another transfer).
    Transfer {
        id: usize,
        from: usize,
        to: usize,
        amount: i64,
    },
    ProcessNext,
    ProcessAll,
    /// Delivers every event again from the start, as a restarted process.
    Rewind,
    Offline {
        account: usize,
        offline: bool,
    },
    Advance {
        seconds: u64,
    },
    RetryPending,
    Close {
        account: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let account = 0..ACCOUNTS.len();
    let amount = 1..=6_000_i64;
    prop_oneof![
        1 => (account.clone(), amount.clone()).prop_map(|(account, amount)| Op::Deposit { account, amount }),
        1 => (account.clone(), amount.clone()).prop_map(|(account, amount)| Op::Withdraw { account, amount }),
        3 => (0..6_usize, account.clone(), account.clone(), amount)
            .prop_map(|(id, from, to, amount)| Op::Transfer { id, from, to, amount }),
        3 => Just(Op::ProcessNext),
        1 => Just(Op::ProcessAll),
        1 => Just(Op::Rewind),
        1 => (account.clone(), any::<bool>()).prop_map(|(account, offline)| Op::Offline { account, offline }),
        2 => (1..=45_u64).prop_map(|seconds| Op::Advance { seconds }),
        1 => Just(Op::RetryPending),
        1 => account.prop_map(|account| Op::Close { account }),
    ]
}

/// The accounts' overdraft limits and opening deposits, and what happens.
#[derive(Debug, Clone)]
struct Scenario {
    limits: Vec<i64>,
    deposits: Vec<i64>,
    ops: Vec<Op>,
}

fn scenario(max_ops: usize) -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(0..=5_000_i64, OPENED),
        prop::collection::vec(0..=20_000_i64, OPENED),
        prop::collection::vec(op(), 1..max_ops),
    )
        .prop_map(|(limits, deposits, ops)| Scenario {
            limits,
            deposits,
            ops,
        })
}

/// What the test knows besides the bank: the cash, and each transfer's
/// amount as first accepted.
#[derive(Debug, Default)]
struct Ledger {
    cash: i64,
    transfers: BTreeMap<String, i64>,
}

/// A refusal is an answer; anything else fails the test.
fn refused_or_ok<T>(result: Result<T, ServiceError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(ServiceError::Refused(_)) => None,
        Err(error) => panic!("the bank failed: {error}"),
    }
}

async fn run(bank: &Bank, clock: &TestClock, scenario: &Scenario) {
    let mut ledger = Ledger::default();
    for (index, account) in ACCOUNTS.iter().take(OPENED).enumerate() {
        bank.open(account, account, scenario.limits[index])
            .await
            .unwrap();
        if scenario.deposits[index] > 0 {
            bank.deposit(account, scenario.deposits[index])
                .await
                .unwrap();
            ledger.cash += scenario.deposits[index];
        }
    }
    for op in &scenario.ops {
        step(bank, clock, &mut ledger, op).await;
        check(bank, scenario, &ledger, false).await;
    }
    // Everything comes back, every deadline passes, everything is delivered.
    for account in ACCOUNTS {
        bank.teller().set_offline(account, false);
    }
    for _ in 0..3 {
        bank.retry_pending().await.unwrap();
        bank.process().await.unwrap();
        clock.advance(common::TIMEOUT + Duration::from_secs(1));
        bank.settle_timeouts().await;
    }
    bank.retry_pending().await.unwrap();
    bank.process().await.unwrap();
    check(bank, scenario, &ledger, true).await;
    for transfer in ledger.transfers.keys() {
        let status = bank.transfer_status(transfer).await.unwrap();
        assert!(
            !matches!(status, TransferStatus::Pending | TransferStatus::Unknown),
            "transfer {transfer} never ended: {status:?}"
        );
    }
}

async fn step(bank: &Bank, clock: &TestClock, ledger: &mut Ledger, op: &Op) {
    match *op {
        Op::Deposit { account, amount } => {
            if refused_or_ok(bank.deposit(ACCOUNTS[account], amount).await).is_some() {
                ledger.cash += amount;
            }
        }
        Op::Withdraw { account, amount } => {
            if refused_or_ok(bank.withdraw(ACCOUNTS[account], amount).await).is_some() {
                ledger.cash -= amount;
            }
        }
        Op::Transfer {
            id,
            from,
            to,
            amount,
        } => {
            let id = format!("t-{id}");
            if refused_or_ok(
                bank.transfer(&id, ACCOUNTS[from], ACCOUNTS[to], amount)
                    .await,
            )
            .is_some()
            {
                ledger.transfers.entry(id).or_insert(amount);
            }
        }
        Op::ProcessNext => {
            bank.process_next().await.unwrap();
        }
        Op::ProcessAll => {
            bank.process().await.unwrap();
        }
        Op::Rewind => {
            bank.rewind().await;
            bank.process().await.unwrap();
        }
        Op::Offline { account, offline } => bank.teller().set_offline(ACCOUNTS[account], offline),
        Op::Advance { seconds } => {
            clock.advance(Duration::from_secs(seconds));
            bank.settle_timeouts().await;
        }
        Op::RetryPending => {
            // A branch still offline fails the delivery again: expected.
            let _ = bank.retry_pending().await;
        }
        Op::Close { account } => {
            refused_or_ok(bank.close(ACCOUNTS[account]).await);
        }
    }
}

/// The invariants; with `settled`, nothing may be in flight.
async fn check(bank: &Bank, scenario: &Scenario, ledger: &Ledger, settled: bool) {
    let mut accounts = Vec::new();
    for account in ACCOUNTS {
        accounts.push(bank.account(account).await.unwrap());
    }
    let mut total = 0;
    for (index, account) in accounts.iter().enumerate().take(OPENED) {
        assert!(
            account.balance >= -scenario.limits[index],
            "{} is at {}, below its limit {}",
            ACCOUNTS[index],
            account.balance,
            scenario.limits[index]
        );
        total += account.balance;
    }
    assert_eq!(
        accounts[OPENED].balance, 0,
        "the missing account holds nothing"
    );
    let mut in_flight = 0;
    for (transfer, amount) in &ledger.transfers {
        let debited = accounts.iter().any(|a| a.debited.contains(transfer));
        let credited = accounts.iter().any(|a| a.credited.contains(transfer));
        let refunded = accounts.iter().any(|a| a.refunded.contains(transfer));
        assert!(
            !(credited && refunded),
            "{transfer} was credited and refunded"
        );
        assert!(
            !credited || debited,
            "{transfer} was credited without a debit"
        );
        if debited && !credited && !refunded {
            in_flight += amount;
        }
    }
    assert_eq!(
        total + in_flight,
        ledger.cash,
        "balances {total} + in flight {in_flight} != cash {}",
        ledger.cash
    );
    if settled {
        assert_eq!(
            in_flight, 0,
            "money still in flight after everything settled"
        );
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// In memory: many cases, long histories.
    #[test]
    fn money_is_conserved_in_memory(scenario in scenario(60)) {
        let runtime = runtime();
        runtime.block_on(async {
            let (bank, clock) = common::memory_bank().await;
            run(&bank, &clock, &scenario).await;
            bank.shutdown().await;
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    /// On PostgreSQL: the same scenario, fewer and shorter cases.
    #[test]
    fn money_is_conserved_on_postgres(scenario in scenario(30)) {
        let runtime = runtime();
        let pg = runtime.block_on(common::pg_bank());
        runtime.block_on(async {
            run(&pg.bank, &pg.clock, &scenario).await;
            pg.bank.shutdown().await;
        });
        // The schema is dropped here, outside the runtime.
        drop(pg);
    }
}
