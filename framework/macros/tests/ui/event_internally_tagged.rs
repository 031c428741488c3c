// The event store keeps (type name, payload): serde's default enum
// representation, not an internally tagged one.
use composable_rust::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[serde(tag = "type")]
enum AccountEvent {
    Opened { owner: String },
}

fn main() {}
