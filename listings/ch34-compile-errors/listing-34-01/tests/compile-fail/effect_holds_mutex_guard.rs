use std::sync::{Arc, Mutex};
use std::time::Duration;

use composable_rust::{Effect, Effects, Reducer};

#[derive(Debug, Default)]
struct Backup {
    runs: u32,
}

#[derive(Debug, Clone)]
enum SyncAction {
    Start,
    Finished,
}

struct Environment {
    log: Arc<Mutex<Vec<String>>>,
}

struct SyncReducer;

impl Reducer for SyncReducer {
    type State = Backup;
    type Action = SyncAction;
    type Environment = Environment;

    fn reduce(&self, state: &mut Backup, action: SyncAction, env: &Environment) -> Effects<SyncAction> {
        match action {
            SyncAction::Start => {
                let log = Arc::clone(&env.log);
                vec![Effect::future(async move {
                    let mut lines = log.lock().unwrap();
                    lines.push("started".to_owned());
                    tokio::time::sleep(Duration::from_millis(10)).await; // guard still held
                    lines.push("finished".to_owned());
                    Some(SyncAction::Finished)
                })]
            }
            SyncAction::Finished => {
                state.runs += 1;
                Effects::new()
            }
        }
    }
}

fn main() {}
