// Schema versions start at 1.
use composable_rust::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 0)]
    Opened { owner: String },
}

fn main() {}
