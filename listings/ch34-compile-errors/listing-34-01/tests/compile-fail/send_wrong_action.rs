use composable_rust::{Effects, Reducer, Store};

#[derive(Debug, Default)]
struct Counter {
    count: i64,
}

#[derive(Debug, Clone)]
enum CounterAction {
    Increment,
}

#[derive(Debug, Clone)]
enum TimerAction {
    Tick,
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

fn main() {
    let store = Store::new(Counter::default(), CounterReducer, ());
    let _ = store.send(TimerAction::Tick);
}
