// A variant is a command or an event, not both.
use composable_rust::Action;

#[derive(Action)]
enum DoorAction {
    #[command]
    #[event]
    Open,
}

fn main() {}
