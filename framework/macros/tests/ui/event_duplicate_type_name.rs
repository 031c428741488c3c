// Two variants that serde writes with one name: stored events of both
// would load as the first.
use composable_rust::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[serde(rename = "account.opened")]
    Opened { owner: String },
    #[serde(rename = "account.opened")]
    Reopened { owner: String },
}

fn main() {}
