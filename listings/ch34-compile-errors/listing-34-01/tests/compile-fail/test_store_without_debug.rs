use composable_rust::testing::TestStore;
use composable_rust::{Effects, Reducer};

#[derive(Clone, Default, PartialEq)] // no Debug
struct Counter {
    count: i64,
}

#[derive(Debug, Clone, PartialEq)]
enum CounterAction {
    Increment,
}

struct CounterReducer;

impl Reducer for CounterReducer {
    type State = Counter;
    type Action = CounterAction;
    type Environment = ();

    fn reduce(&self, state: &mut Counter, action: CounterAction, _: &()) -> Effects<CounterAction> {
        match action {
            CounterAction::Increment => state.count += 1,
        }
        Effects::new()
    }
}

#[tokio::main]
async fn main() {
    let mut store = TestStore::new(Counter::default(), CounterReducer, ());
    store.send(CounterAction::Increment, |s| s.count = 1).await;
    store.finish().await;
}
