//! The migration, one step per command, on `DATABASE_URL`, in the schema
//! `crud_migration`:
//!
//! ```text
//! listing-30-02 setup-demo                    the old application's table, 4 rows (starts over)
//! listing-30-02 import                        one stream per row (again: imports nothing)
//! listing-30-02 create <name> <cents>         the new writer
//! listing-30-02 update <id> <name> <cents>
//! listing-30-02 delete <id>
//! listing-30-02 sync                          the projection writes the legacy table
//! listing-30-02 show                          the legacy table, as the old readers see it
//! listing-30-02 verify                        both sides compared
//! listing-30-02 history <id>                  a product's events
//! ```

use catalog::import::import;
use catalog::product::product_stream;
use catalog::verify::compare;
use catalog::{Deployment, MigrationError};
use composable_rust::prelude::*;

const SCHEMA: &str = "crud_migration";
const USAGE: &str = "usage: listing-30-02 setup-demo | import | create <name> <cents> | \
    update <id> <name> <cents> | delete <id> | sync | show | verify | history <id>";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let url = std::env::var("DATABASE_URL").map_err(|_| {
        "DATABASE_URL is not set: this needs PostgreSQL. Set it, e.g. \
         DATABASE_URL=postgres://postgres@localhost:5432/postgres, or run \
         `source ci/start-services`"
    })?;

    if args == ["setup-demo"] {
        return setup_demo(&url).await;
    }
    let app = Deployment::connect(&url, SCHEMA).await?;
    // The event store's tables are created above; the legacy table must be there.
    let legacy_table: Option<String> = sqlx::query_scalar("SELECT to_regclass('products')::text")
        .fetch_one(&app.pool)
        .await?;
    if legacy_table.is_none() {
        return Err(format!(
            "there is no table `products` in the schema `{SCHEMA}`: \
             run `cargo run -p listing-30-02 -- setup-demo` first"
        )
        .into());
    }
    let written = match args.as_slice() {
        ["import"] => {
            let report = import(&app.pool, &app.events, 500).await?;
            println!("{report}");
            return Ok(());
        }
        ["create", name, cents] => app
            .service()
            .create(name, cents.parse()?)
            .await
            .map(|id| format!("product {id}: created")),
        ["update", id, name, cents] => app
            .service()
            .update(id.parse()?, name, cents.parse()?)
            .await
            .map(|events| format!("product {id}: updated ({events} event{})", plural(events))),
        ["delete", id] => app
            .service()
            .delete(id.parse()?)
            .await
            .map(|_| format!("product {id}: deleted")),
        ["sync"] => {
            let applied = app.legacy_view().catch_up().await?;
            println!("legacy-products: applied {applied} events to the legacy table");
            return Ok(());
        }
        ["show"] => {
            for row in app.legacy.list().await? {
                println!("{:>3}  {:<14} {:>6}", row.id, row.name, row.price_cents);
            }
            return Ok(());
        }
        ["verify"] => {
            println!("{}", compare(&app.legacy, &app.events).await?);
            return Ok(());
        }
        ["history", id] => {
            for event in app
                .events
                .load_stream(&product_stream(id.parse()?)?, 0)
                .await?
            {
                println!(
                    "v{} {} {}",
                    event.stream_version, event.event_type, event.payload
                );
            }
            return Ok(());
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    match written {
        Ok(done) => println!("{done}"),
        // A refusal is an answer, not a failure of the tool.
        Err(refused @ MigrationError::Rejected { .. }) => println!("{refused}"),
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

/// Starts over: drops the schema, then creates the old application's table
/// with the rows it had, through the old code (listing 30-1).
async fn setup_demo(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let pool = sqlx::PgPool::connect(url).await?;
    // SCHEMA is a constant, not input: nothing else reaches this statement.
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        .execute(&pool)
        .await?;
    pool.close().await;
    let app = Deployment::connect(url, SCHEMA).await?; // creates the schema
    app.legacy.migrate().await?;
    for (name, cents) in [
        ("Espresso cup", 1200),
        ("Grinder", 8900),
        ("Kettle", 4500),
        ("Tamper", 3200),
    ] {
        app.legacy.create(name, cents).await?;
    }
    let rows = app.legacy.list().await?.len();
    println!("legacy table {SCHEMA}.products: {rows} rows, as the old application left them");
    Ok(())
}

fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}
