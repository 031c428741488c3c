//! The smallest Composable Rust program: a state, one action, a reducer,
//! and a store that runs them. It only has to compile and run.

use composable_rust::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    Greet(String),
}

struct Greeter;

impl Reducer for Greeter {
    type State = Vec<String>;
    type Action = Action;
    type Environment = ();

    fn reduce(&self, greetings: &mut Vec<String>, action: Action, _env: &()) -> Effects<Action> {
        let Action::Greet(name) = action;
        greetings.push(format!("Welcome to the bank, {name}!"));
        Effects::new()
    }
}

#[tokio::main]
async fn main() {
    let store = Store::new(Vec::new(), Greeter, ());
    store.send(Action::Greet("Ada".into())).await.unwrap();
    store.state(|greetings| println!("{}", greetings.join("\n")));
}
