//! The account's rules: each command on a given history, with
//! `AggregateTest` (no database), then the same rules through the bank on
//! PostgreSQL, where a refusal must leave the stream untouched.

mod common;

use std::sync::Arc;

use banking::account::account_stream;
use banking::error::codes;
use banking::{Account, AccountCommand, AccountEvent, BankError, Movement};
use chrono::{DateTime, Utc};
use composable_rust::prelude::*;
use composable_rust_testing::AggregateTest;

fn test(clock: &composable_rust::TestClock) -> AggregateTest<Account> {
    let env: Arc<dyn Clock> = Arc::new(clock.clone());
    AggregateTest::new(env)
}

fn opened(limit: i64, at: DateTime<Utc>) -> AccountEvent {
    AccountEvent::Opened {
        account_id: "a-1".into(),
        owner: "Ada".into(),
        overdraft_limit: limit,
        at,
    }
}

fn deposited(amount: i64, balance: i64, at: DateTime<Utc>) -> AccountEvent {
    AccountEvent::Deposited {
        account_id: "a-1".into(),
        amount,
        balance,
        movement: Movement::Cash,
        at,
    }
}

#[test]
fn an_account_opens_once_with_a_limit_of_zero_or_more() {
    let clock = common::clock();
    let now = clock.now();
    let open = |limit| AccountCommand::Open {
        account_id: "a-1".into(),
        owner: "Ada".into(),
        overdraft_limit: limit,
    };
    test(&clock).when(open(0)).then_events([opened(0, now)]);
    test(&clock)
        .when(open(-1))
        .then_rejected(BankError::InvalidOverdraftLimit { limit: -1 });
    test(&clock)
        .given([opened(0, now)])
        .when(open(0))
        .then_rejected(BankError::AccountAlreadyOpen {
            account: "a-1".into(),
        });
    test(&clock)
        .when(AccountCommand::Open {
            account_id: "a 1; drop".into(),
            owner: "Ada".into(),
            overdraft_limit: 0,
        })
        .then_rejected(BankError::InvalidId {
            id: "a 1; drop".into(),
        });
}

#[test]
fn amounts_are_positive_cents() {
    let clock = common::clock();
    let now = clock.now();
    for amount in [0, -5] {
        test(&clock)
            .given([opened(0, now)])
            .when(AccountCommand::Deposit { amount })
            .then_rejected(BankError::InvalidAmount { amount });
        test(&clock)
            .given([opened(0, now)])
            .when(AccountCommand::Withdraw { amount })
            .then_rejected(BankError::InvalidAmount { amount });
    }
}

#[test]
fn a_withdrawal_may_use_the_overdraft_but_not_more() {
    let clock = common::clock();
    let now = clock.now();
    let history = [opened(100, now), deposited(50, 50, now)];
    // 50 - 150 = -100: exactly the limit.
    let state = test(&clock)
        .given(history.clone())
        .when(AccountCommand::Withdraw { amount: 150 })
        .then_events([AccountEvent::Withdrawn {
            account_id: "a-1".into(),
            amount: 150,
            balance: -100,
            movement: Movement::Cash,
            at: now,
        }]);
    assert_eq!(state.balance, -100);
    // 50 - 151 = -101: one cent too far.
    test(&clock)
        .given(history)
        .when(AccountCommand::Withdraw { amount: 151 })
        .then_rejected(BankError::InsufficientFunds {
            account: "a-1".into(),
            balance: 50,
            overdraft_limit: 100,
            requested: 151,
            available: 150,
        });
}

#[test]
fn only_an_account_at_zero_closes_and_a_closed_one_refuses_everything() {
    let clock = common::clock();
    let now = clock.now();
    test(&clock)
        .given([opened(0, now), deposited(1, 1, now)])
        .when(AccountCommand::Close)
        .then_rejected(BankError::BalanceNotZero {
            account: "a-1".into(),
            balance: 1,
        });
    let closed = AccountEvent::Closed {
        account_id: "a-1".into(),
        at: now,
    };
    test(&clock)
        .given([opened(0, now)])
        .when(AccountCommand::Close)
        .then_events([closed.clone()]);
    test(&clock)
        .given([opened(0, now), closed])
        .when(AccountCommand::Deposit { amount: 1 })
        .then_rejected(BankError::AccountClosed {
            account: "a-1".into(),
        });
}

#[test]
fn transfer_steps_happen_once_per_transfer_and_never_after_the_deadline() {
    let clock = common::clock();
    let now = clock.now();
    let deadline = now + chrono::Duration::seconds(30);
    let debit = || AccountCommand::DebitTransfer {
        transfer_id: "t-1".into(),
        to: "b-1".into(),
        amount: 40,
        deadline,
    };
    let after_debit = test(&clock)
        .given([opened(0, now), deposited(100, 100, now)])
        .when(debit())
        .then_events([AccountEvent::Withdrawn {
            account_id: "a-1".into(),
            amount: 40,
            balance: 60,
            movement: Movement::TransferOut {
                transfer_id: "t-1".into(),
                to: "b-1".into(),
            },
            at: now,
        }]);
    let env: Arc<dyn Clock> = Arc::new(clock.clone());
    // The same debit again: nothing.
    assert_eq!(after_debit.decide(debit(), &env), Ok(vec![]));
    // A refund gives it back once; a second refund does nothing.
    let refund = || AccountCommand::RefundTransfer {
        transfer_id: "t-1".into(),
        amount: 40,
    };
    let events = after_debit.decide(refund(), &env).unwrap();
    assert_eq!(events.len(), 1);
    let mut refunded = after_debit.clone();
    refunded.apply(&events[0]);
    assert_eq!(refunded.balance, 100);
    assert_eq!(refunded.decide(refund(), &env), Ok(vec![]));
    // A refund of a debit that never happened does nothing either.
    assert_eq!(
        Account::default().decide(refund(), &env),
        Ok(vec![]),
        "nothing was taken, nothing is given back"
    );
    // At the deadline, a debit is refused.
    clock.advance(std::time::Duration::from_secs(30));
    let refused = test(&clock)
        .given([opened(0, now), deposited(100, 100, now)])
        .when(debit());
    refused.then_rejected(BankError::TransferExpired {
        transfer: "t-1".into(),
        deadline,
    });
}

#[tokio::test]
async fn a_refused_command_writes_nothing_and_says_why_with_its_code() {
    let pg = common::pg_bank().await;
    let bank = &pg.bank;
    bank.open("ada", "Ada", 1_000).await.unwrap();
    bank.deposit("ada", 500).await.unwrap();
    let stream = account_stream("ada").unwrap();
    let before = pg.events.stream_version(&stream).await.unwrap();

    let refused = bank.withdraw("ada", 1_501).await.unwrap_err();
    assert_eq!(refused.code().as_str(), codes::INSUFFICIENT_FUNDS.as_str());
    let message = refused.to_string();
    assert!(
        message.starts_with("[BANK-E0006] account ada cannot pay 1501 cents"),
        "{message}"
    );
    assert!(
        message.contains("at most 1500 cents are available"),
        "{message}"
    );
    for refused in [
        bank.deposit("ada", 0).await.unwrap_err(),
        bank.close("ada").await.unwrap_err(),
        bank.open("ada", "Ada", 0).await.unwrap_err(),
    ] {
        assert!(refused.refusal().is_some(), "{refused}");
    }
    assert_eq!(pg.events.stream_version(&stream).await.unwrap(), before);

    // A missing account is named in the refusal, and gets no stream.
    let missing = bank.deposit("nobody", 100).await.unwrap_err();
    assert_eq!(
        missing.refusal(),
        Some(&BankError::AccountNotOpen {
            account: "nobody".into()
        })
    );
    let nobody = account_stream("nobody").unwrap();
    assert_eq!(pg.events.stream_version(&nobody).await.unwrap(), 0);

    // The limit is honoured on PostgreSQL too: down to -1000, not further.
    bank.withdraw("ada", 1_500).await.unwrap();
    assert_eq!(bank.account("ada").await.unwrap().balance, -1_000);
}
