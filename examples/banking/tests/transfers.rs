//! The transfer saga on PostgreSQL: the happy path, compensation when the
//! credit is refused, a refused debit, idempotency (the same transfer id
//! twice, events delivered again, a command delivered twice), and the
//! deadline on a test clock (no test waits for it).

mod common;

use std::time::Duration;

use banking::error::codes;
use banking::transfer::TransferCommand;
use banking::{Bank, Requested, TransferStatus};
use composable_rust::prelude::*;
use composable_rust::saga::{CommandId, SagaCommand, SagaId};

/// Opens `accounts` (id, overdraft limit, opening deposit).
async fn open(bank: &Bank, accounts: &[(&str, i64, i64)]) {
    for (id, limit, deposit) in accounts {
        bank.open(id, id, *limit).await.unwrap();
        if *deposit > 0 {
            bank.deposit(id, *deposit).await.unwrap();
        }
    }
}

async fn balances(bank: &Bank, accounts: &[&str]) -> Vec<i64> {
    let mut balances = Vec::new();
    for account in accounts {
        balances.push(bank.account(account).await.unwrap().balance);
    }
    balances
}

#[tokio::test]
async fn a_transfer_debits_the_source_and_credits_the_target() {
    let pg = common::pg_bank().await;
    let bank = &pg.bank;
    open(bank, &[("ada", 0, 10_000), ("bob", 0, 0)]).await;

    assert_eq!(
        bank.transfer("t-1", "ada", "bob", 2_500).await.unwrap(),
        Requested::New
    );
    assert_eq!(
        bank.transfer_status("t-1").await.unwrap(),
        TransferStatus::Unknown
    );
    bank.process().await.unwrap();

    assert_eq!(
        bank.transfer_status("t-1").await.unwrap(),
        TransferStatus::Completed
    );
    assert_eq!(balances(bank, &["ada", "bob"]).await, [7_500, 2_500]);
}

#[tokio::test]
async fn a_refused_credit_refunds_the_source() {
    let pg = common::pg_bank().await;
    let bank = &pg.bank;
    open(bank, &[("ada", 0, 10_000), ("closed", 0, 0)]).await;
    bank.close("closed").await.unwrap();

    bank.transfer("t-closed", "ada", "closed", 4_000)
        .await
        .unwrap();
    bank.transfer("t-missing", "ada", "nobody", 1_000)
        .await
        .unwrap();
    bank.process().await.unwrap();

    for (transfer, code) in [
        ("t-closed", codes::ACCOUNT_CLOSED),
        ("t-missing", codes::ACCOUNT_NOT_OPEN),
    ] {
        let TransferStatus::Failed(reason) = bank.transfer_status(transfer).await.unwrap() else {
            panic!("{transfer} should have failed");
        };
        assert!(
            reason.starts_with(&format!("[{}]", code.as_str())),
            "{reason}"
        );
    }
    let ada = bank.account("ada").await.unwrap();
    assert_eq!(ada.balance, 10_000, "both debits were refunded");
    assert_eq!(ada.debited.len(), 2);
    assert_eq!(ada.refunded, ada.debited);
    assert_eq!(bank.account("closed").await.unwrap().balance, 0);
}

#[tokio::test]
async fn a_refused_debit_moves_nothing() {
    let pg = common::pg_bank().await;
    let bank = &pg.bank;
    open(bank, &[("ada", 500, 1_000), ("bob", 0, 0)]).await;

    bank.transfer("t-big", "ada", "bob", 1_501).await.unwrap();
    bank.process().await.unwrap();

    let TransferStatus::Failed(reason) = bank.transfer_status("t-big").await.unwrap() else {
        panic!("the transfer should have failed");
    };
    assert!(reason.starts_with("[BANK-E0006]"), "{reason}");
    assert_eq!(balances(bank, &["ada", "bob"]).await, [1_000, 0]);
}

#[tokio::test]
async fn the_same_transfer_id_moves_money_once() {
    let pg = common::pg_bank().await;
    let bank = &pg.bank;
    open(bank, &[("ada", 0, 10_000), ("bob", 0, 0)]).await;

    bank.transfer("t-1", "ada", "bob", 1_000).await.unwrap();
    bank.process().await.unwrap();
    // The client did not get the answer and sends it again, before and
    // after the saga ran.
    for _ in 0..2 {
        assert_eq!(
            bank.transfer("t-1", "ada", "bob", 1_000).await.unwrap(),
            Requested::AlreadyRequested
        );
        bank.process().await.unwrap();
    }
    // The same id for something else is refused, with its code.
    let reused = bank.transfer("t-1", "ada", "bob", 2_000).await.unwrap_err();
    assert_eq!(reused.code().as_str(), codes::TRANSFER_ID_REUSED.as_str());

    assert_eq!(balances(bank, &["ada", "bob"]).await, [9_000, 1_000]);
}

#[tokio::test]
async fn events_delivered_again_move_nothing_twice() {
    let pg = common::pg_bank().await;
    open(&pg.bank, &[("ada", 0, 10_000), ("bob", 0, 0)]).await;
    pg.bank.transfer("t-1", "ada", "bob", 1_000).await.unwrap();
    pg.bank.transfer("t-2", "ada", "nobody", 500).await.unwrap();
    pg.bank.process().await.unwrap();
    let before = balances(&pg.bank, &["ada", "bob"]).await;

    // The same process again from the start (after a crash, say) ...
    pg.bank.rewind().await;
    pg.bank.process().await.unwrap();
    // ... and a second process on the same store, starting afresh.
    let second = Bank::start(
        std::sync::Arc::clone(&pg.events),
        std::sync::Arc::new(pg.clock.clone()),
        common::TIMEOUT,
    )
    .await
    .unwrap();
    second.process().await.unwrap();

    assert_eq!(balances(&pg.bank, &["ada", "bob"]).await, before);
    assert_eq!(before, [9_000, 1_000]);
    second.shutdown().await;
}

#[tokio::test]
async fn a_command_delivered_twice_is_carried_out_once() {
    let pg = common::pg_bank().await;
    let bank = &pg.bank;
    open(bank, &[("ada", 0, 10_000), ("bob", 0, 0)]).await;
    bank.transfer("t-1", "ada", "bob", 1_000).await.unwrap();
    bank.process().await.unwrap();
    let request = bank
        .transfer_saga("t-1")
        .await
        .unwrap()
        .state()
        .request
        .clone()
        .unwrap();

    // The teller receives each step again, as a queue might redeliver it.
    for command in [
        TransferCommand::Debit(request.clone()),
        TransferCommand::Credit(request.clone()),
    ] {
        let again = SagaCommand {
            id: CommandId::new(format!("redelivered-{command:?}")),
            saga_id: SagaId::new("t-1").unwrap(),
            command,
        };
        bank.teller().dispatch(&again).await.unwrap();
        bank.teller().dispatch(&again).await.unwrap();
    }
    bank.process().await.unwrap();
    assert_eq!(balances(bank, &["ada", "bob"]).await, [9_000, 1_000]);
}

#[tokio::test]
async fn a_credit_that_misses_the_deadline_is_refused_and_the_source_refunded() {
    let pg = common::pg_bank().await;
    let bank = &pg.bank;
    open(bank, &[("ada", 0, 10_000), ("bob", 0, 0)]).await;

    bank.teller().set_offline("bob", true);
    bank.transfer("t-1", "ada", "bob", 3_000).await.unwrap();
    bank.process().await.unwrap();
    assert_eq!(
        bank.transfer_status("t-1").await.unwrap(),
        TransferStatus::Pending
    );
    assert_eq!(
        balances(bank, &["ada", "bob"]).await,
        [7_000, 0],
        "debited, not credited"
    );

    // One second before the deadline: still waiting.
    pg.clock.advance(common::TIMEOUT - Duration::from_secs(1));
    bank.settle_timeouts().await;
    assert_eq!(
        bank.transfer_status("t-1").await.unwrap(),
        TransferStatus::Pending
    );

    // The deadline: the saga gives up. Its reversal waits behind the
    // credit, which is still undeliverable.
    pg.clock.advance(Duration::from_secs(1));
    bank.settle_timeouts().await;
    assert_eq!(
        bank.transfer_status("t-1").await.unwrap(),
        TransferStatus::Failed("the deadline passed".into())
    );

    // The branch is back: the late credit is refused, the source refunded.
    bank.teller().set_offline("bob", false);
    bank.retry_pending().await.unwrap();
    bank.process().await.unwrap();
    let refusals = bank.transfer_refusals("t-1").await.unwrap();
    assert_eq!(refusals.len(), 1);
    assert!(refusals[0].starts_with("[BANK-E0008]"), "{refusals:?}");
    assert_eq!(balances(bank, &["ada", "bob"]).await, [10_000, 0]);
}

#[tokio::test]
async fn a_credit_made_before_the_deadline_is_kept_when_its_answer_comes_late() {
    let pg = common::pg_bank().await;
    let bank = &pg.bank;
    open(bank, &[("ada", 0, 10_000), ("bob", 0, 0)]).await;
    bank.process().await.unwrap();

    bank.transfer("t-1", "ada", "bob", 3_000).await.unwrap();
    // Deliver one event at a time until Bob has the money: the saga has
    // not seen the credit's event yet.
    while !bank.account("bob").await.unwrap().credited.contains("t-1") {
        assert!(
            bank.process_next().await.unwrap(),
            "the credit never happened"
        );
    }
    pg.clock.advance(common::TIMEOUT);
    bank.settle_timeouts().await;
    bank.process().await.unwrap();

    assert_eq!(
        bank.transfer_status("t-1").await.unwrap(),
        TransferStatus::CompletedBeforeDeadline
    );
    assert_eq!(
        balances(bank, &["ada", "bob"]).await,
        [7_000, 3_000],
        "not refunded"
    );
}
