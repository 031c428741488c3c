//! Listing 2-1: the smallest Composable Rust program, used to check that a
//! new project is set up correctly.

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
        greetings.push(format!("Hello, {name}!"));
        Effects::new()
    }
}

#[tokio::main]
async fn main() {
    let store = Store::new(Vec::new(), Greeter, ());
    store
        .send(Action::Greet("Composable Rust".into()))
        .await
        .unwrap();
    store.state(|greetings| println!("{}", greetings.join("\n")));
}
