// An event is read back by the name it was written with.
use composable_rust::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[serde(rename(serialize = "opened", deserialize = "account.opened"))]
    Opened { owner: String },
}

fn main() {}
