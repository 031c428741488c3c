//! The service's command line. Commands run on the event store in
//! PostgreSQL (`DATABASE_URL`); `work` moves events along through Redis
//! Streams (`REDIS_URL`): the fulfillment saga ships paid orders, and the
//! projections update the read model.
//!
//! ```text
//! {{project-name}} place <order> <customer> <total>
//! {{project-name}} pay <order> <amount>
//! {{project-name}} cancel <order> <reason>
//! {{project-name}} work
//! {{project-name}} show <order>
//! {{project-name}} history <order>
//! {{project-name}} ops replay <order> [--from VERSION|TIME] [--until CONDITION]
//! {{project-name}} ops saga show <order>
//! {{project-name}} ops saga graph
//! ```
//!
//! `ops saga graph` draws the fulfillment saga's declared map; it needs no
//! database.

use std::time::Duration;

use composable_rust::aggregate::{AsOf, RepositoryError, StateCondition};
use composable_rust::prelude::*;
use {{crate_name}}::aggregates::order::OrderCommand;
use {{crate_name}}::app::{App, Config, Error};
use {{crate_name}}::ops;
use {{crate_name}}::projections::order_summaries::{
    OrderSummary, OrderTotals, TOTALS_KEY, summary_key,
};

const USAGE: &str = "usage: {{project-name}} place <order> <customer> <total> | pay <order> <amount> | cancel <order> <reason> | work | show <order> | history <order> | ops replay <order> [--from VERSION|TIME] [--until CONDITION] | ops saga show <order> | ops saga graph";

/// How long a placed order may wait for its payment.
const PAYMENT_WINDOW: Duration = Duration::from_secs(15 * 60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The saga's map is code: drawing it reads no store.
    if let ["ops", "saga", "graph"] = args.as_slice() {
        return ops::saga_graph(&mut std::io::stdout().lock());
    }
    let app = App::connect(&Config::from_env()?).await?;

    let (id, command) = match args.as_slice() {
        ["place", id, customer, total] => (
            *id,
            OrderCommand::Place {
                customer: customer.to_string(),
                total: total.parse()?,
            },
        ),
        ["pay", id, amount] => (
            *id,
            OrderCommand::Pay {
                amount: amount.parse()?,
            },
        ),
        ["cancel", id, reason] => (
            *id,
            OrderCommand::Cancel {
                reason: reason.to_string(),
            },
        ),
        ["work"] => {
            let report = app.work(PAYMENT_WINDOW).await?;
            for ended in &report.ended {
                println!("{ended}");
            }
            println!(
                "published {} event(s); the projections applied {}",
                report.published, report.projected
            );
            return Ok(());
        }
        ["show", id] => return show(&app, id).await,
        ["history", id] => {
            for line in ops::history(&app.events, &app.orders.stream_id(id)?).await? {
                println!("{line}");
            }
            return Ok(());
        }
        ["ops", "replay", id, options @ ..] => {
            let (from, until) = replay_options(options)?;
            let stream = app.orders.stream_id(id)?;
            let mut out = std::io::stdout().lock();
            return ops::replay(&app.orders, &stream, from, until.as_ref(), &mut out).await;
        }
        ["ops", "saga", "show", id] => {
            return ops::saga_history(&app.events, id, &mut std::io::stdout().lock()).await;
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };

    let stream = app.orders.stream_id(id)?;
    match app
        .orders
        .execute_with_retry(&stream, 3, || command.clone())
        .await
    {
        Ok(done) => println!(
            "{stream}: {:?} (version {})",
            done.state.status, done.version
        ),
        Err(RepositoryError::Rejected(reason)) => println!("{stream}: refused: {reason}"),
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

/// `[--from VERSION|TIME] [--until CONDITION]` of `ops replay`: from the
/// start, to the end, unless they say otherwise.
fn replay_options(options: &[&str]) -> Result<(AsOf, Option<StateCondition>), Error> {
    let mut from = AsOf::Version(0);
    let mut until = None;
    let mut rest = options.iter();
    while let Some(option) = rest.next() {
        match (*option, rest.next()) {
            ("--from", Some(value)) => from = value.parse()?,
            ("--until", Some(value)) => until = Some(value.parse()?),
            _ => return Err(format!("unexpected `{option}`\n{USAGE}").into()),
        }
    }
    Ok((from, until))
}

/// Prints an order's summary and the totals, from the read model (as of
/// the last `work`).
async fn show(app: &App, id: &str) -> Result<(), Error> {
    let stream = app.orders.stream_id(id)?;
    let Some(summary) = app
        .read_model
        .get_json::<OrderSummary>(&summary_key(&stream))
        .await?
    else {
        println!("{stream}: not in the read model (run `work` to update it)");
        return Ok(());
    };
    let totals: OrderTotals = app
        .read_model
        .get_json(TOTALS_KEY)
        .await?
        .unwrap_or_default();
    println!(
        "{stream} ({}): {} for {:?}; the shop: {} order(s) placed, {} cancelled, {} paid in",
        summary.customer,
        summary.total,
        summary.status,
        totals.placed,
        totals.cancelled,
        totals.revenue
    );
    Ok(())
}
