//! Runs an account in a Store and prints what each action did.

use bank::account::{Account, AccountAction, AccountReducer};
use composable_rust::prelude::*;

#[tokio::main]
async fn main() {
    let store = Store::new(Account::default(), AccountReducer, ());
    let actions = [
        AccountAction::Open {
            owner: "Ada".into(),
        },
        AccountAction::Deposit { amount: 100 },
        AccountAction::Withdraw { amount: 30 },
        AccountAction::Withdraw { amount: 500 },
    ];
    for action in actions {
        println!("{action:?}");
        store.send(action).await.unwrap();
        store.state(|account| match &account.refused {
            None => println!("  balance {}", account.balance),
            Some(refusal) => println!("  refused: {refusal:?}"),
        });
    }
}
