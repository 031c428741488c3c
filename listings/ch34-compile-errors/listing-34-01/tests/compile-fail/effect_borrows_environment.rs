use std::sync::Arc;

use composable_rust::{Clock, Effect, Effects, Reducer};

#[derive(Debug, Default)]
struct Session {
    renewed: u32,
}

#[derive(Debug, Clone)]
enum SessionAction {
    Renew,
    Renewed,
}

struct Environment {
    clock: Arc<dyn Clock>,
}

struct SessionReducer;

impl Reducer for SessionReducer {
    type State = Session;
    type Action = SessionAction;
    type Environment = Environment;

    fn reduce(&self, state: &mut Session, action: SessionAction, env: &Environment) -> Effects<SessionAction> {
        match action {
            SessionAction::Renew => vec![Effect::future(async {
                println!("renewing at {}", env.clock.now());
                Some(SessionAction::Renewed)
            })],
            SessionAction::Renewed => {
                state.renewed += 1;
                Effects::new()
            }
        }
    }
}

fn main() {}
