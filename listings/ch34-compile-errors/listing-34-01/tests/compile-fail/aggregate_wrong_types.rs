use std::convert::Infallible;

use composable_rust::Aggregate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, composable_rust::Event)]
enum AccountEvent {
    Deposited { amount: u64 },
}

#[derive(Debug)]
enum AccountCommand {
    Deposit { amount: u64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Account {
    balance: u64,
}

impl Aggregate for Account {
    const KIND: &'static str = "account";
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = Infallible;
    type Environment = ();

    // The command's type is Self::Command, not the event's.
    fn decide(&self, command: AccountEvent, _: &()) -> Result<Vec<AccountEvent>, Infallible> {
        Ok(vec![command])
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
        }
    }
}

fn main() {
    let _ = AccountCommand::Deposit { amount: 1 };
}
