use composable_rust::Event;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Event)] // no Serialize, Deserialize
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Account {
    owner: String,
    balance: u64,
}

fn main() {}
