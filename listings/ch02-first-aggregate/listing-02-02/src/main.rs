//! Runs an account in a Store: a deposit is held for half a second, and a
//! withdrawal before it clears is refused.

use std::time::Duration;

use bank::account::{Account, AccountAction, AccountEnvironment, AccountReducer};
use composable_rust::prelude::*;

#[tokio::main]
async fn main() {
    let env = AccountEnvironment {
        hold: Duration::from_millis(500),
    };
    let store = Store::new(Account::default(), AccountReducer, env);
    let show = |account: &Account| match &account.refused {
        None => println!("  balance {}, on hold {}", account.balance, account.on_hold),
        Some(refusal) => println!("  refused: {refusal:?}"),
    };

    println!("open, then deposit 100");
    store
        .send(AccountAction::Open {
            owner: "Ada".into(),
        })
        .await
        .unwrap();
    // `send` runs the reducer at once; awaiting its handle would wait for
    // the hold to clear too. Keep the handle for later.
    let deposit = store.send(AccountAction::Deposit { amount: 100 });
    store.state(show);

    println!("withdraw 30 while the deposit is on hold");
    store
        .send(AccountAction::Withdraw { amount: 30 })
        .await
        .unwrap();
    store.state(show);

    println!("wait for the deposit's effects: the hold clears");
    deposit.await.unwrap();
    store.state(show);

    println!("withdraw 30 again");
    store
        .send(AccountAction::Withdraw { amount: 30 })
        .await
        .unwrap();
    store.state(show);
}
