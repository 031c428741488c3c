// Events are an enum, one variant per event type.
use composable_rust::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
struct Opened {
    owner: String,
}

fn main() {}
