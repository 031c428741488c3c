// An event that is written must be readable.
use composable_rust::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened { owner: String },
    #[serde(skip_deserializing)]
    Audited,
}

fn main() {}
