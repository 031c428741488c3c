use std::rc::Rc;
use std::time::Duration;

use composable_rust::{Effect, Effects, Reducer};

#[derive(Debug, Default)]
struct Greeter {
    sent: u32,
}

#[derive(Debug, Clone)]
enum GreeterAction {
    Greet(String),
    Greeted,
}

struct GreeterReducer;

impl Reducer for GreeterReducer {
    type State = Greeter;
    type Action = GreeterAction;
    type Environment = ();

    fn reduce(&self, state: &mut Greeter, action: GreeterAction, _: &()) -> Effects<GreeterAction> {
        match action {
            GreeterAction::Greet(name) => vec![Effect::future(async move {
                let name = Rc::new(name);
                tokio::time::sleep(Duration::from_millis(10)).await;
                println!("hello, {name}");
                Some(GreeterAction::Greeted)
            })],
            GreeterAction::Greeted => {
                state.sent += 1;
                Effects::new()
            }
        }
    }
}

fn main() {}
