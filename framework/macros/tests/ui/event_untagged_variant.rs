// An untagged variant has no type name to store.
use composable_rust::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened { owner: String },
    #[serde(untagged)]
    Anything(serde_json::Value),
}

fn main() {}
