// The type name has one source, serde's rename.
use composable_rust::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(rename = "account.opened")]
    Opened { owner: String },
}

fn main() {}
