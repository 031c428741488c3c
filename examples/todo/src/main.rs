//! Runs the Todo aggregate in a Store and prints the list read model.

use std::time::Duration;

use composable_rust::prelude::*;
use todo::{TodoAction, TodoEnvironment, TodoList, TodoReducer, TodoState};

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Completed todos disappear after 50 ms, so the demo ends quickly.
    let env = TodoEnvironment::live(Duration::from_millis(50));
    let list = env.list.clone();
    let store = Store::new(TodoState::default(), TodoReducer, env);

    store
        .send(TodoAction::Create {
            id: 1,
            title: "Read the book".into(),
        })
        .await?;
    store
        .send(TodoAction::Create {
            id: 2,
            title: "Write a reducer".into(),
        })
        .await?;
    print_list("after creating two todos", &list);

    // Awaiting a send waits for all of its effects, including the 50 ms
    // clean-up timer that deletes the completed todo.
    store.send(TodoAction::Complete { id: 1 }).await?;
    print_list("after completing todo 1 and its clean-up", &list);

    store
        .send(TodoAction::Create {
            id: 3,
            title: "   ".into(),
        })
        .await?;
    let error = store.state(|s| s.last_error.clone());
    println!(
        "creating a blank todo: {}",
        error.map_or("accepted".into(), |e| e.to_string())
    );

    store.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}

fn print_list(when: &str, list: &TodoList) {
    println!("{when}:");
    for (id, row) in list.rows() {
        println!(
            "  [{}] {id}: {}",
            if row.done { "x" } else { " " },
            row.title
        );
    }
}
// ANCHOR_END: main
