//! Listing 3-2: the bank app run by one Store. Prints every action the
//! store reduces, in order, then the app's state.

use composable_rust::prelude::*;
use listing_03_01::accounts::{AccountsAction, AccountsEnvironment};
use listing_03_01::notifications::NotificationsEnvironment;
use listing_03_02::{BankAction, BankEnvironment, BankState, bank};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: main
    let env = BankEnvironment {
        accounts: AccountsEnvironment {
            low_balance_below: 50,
        },
        notifications: NotificationsEnvironment::default(),
    };
    let outbox = env.notifications.outbox.clone();
    let store = Store::new(BankState::default(), bank(), env);
    let mut reduced = store.subscribe_actions();

    use AccountsAction::*;
    for action in [
        Open { account: 1 },
        Deposit {
            account: 1,
            amount: 100,
        },
        Withdraw {
            account: 1,
            amount: 80,
        },
    ] {
        // Waits until the action's effects, and everything they feed back, are done.
        store.send(BankAction::Accounts(action)).await?;
    }

    while let Ok(action) = reduced.try_recv() {
        println!("{action:?}");
    }
    println!("total balance: {}", store.state(|s| s.total_balance));
    println!("delivered: {:?}", outbox.sent());
    // ANCHOR_END: main
    Ok(())
}
