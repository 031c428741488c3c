//! Operations on a deployment's stores, type-free (they need none of the
//! service's types, so they work on any deployment): the events
//! (`composable events`), the projections' status (`composable projections
//! status`), dead letters (`composable dead-letters list|show|retry|discard`)
//! and rebuilds (`composable checkpoint reset`, and `composable rebuilds
//! status` for a PostgreSQL blue/green read model's versions).
//!
//! Every command reads PostgreSQL's event store (`--database-url`,
//! `--schema`); the projection commands read the projection store in the
//! same database (`--projection-schema`, default `--schema`) or in Redis
//! (`--key-prefix`, `--redis-url`). Retrying a dead letter and resetting a
//! checkpoint need the projection's own code, so they file a request in
//! the store that the service's projection manager carries out
//! (`ProjectionRequest`). Errors carry codes `CR-E0301` to `CR-E0349`
//! ([`codes`]), or the store's own.

mod checkpoint;
pub mod codes;
mod connection;
mod dead_letters;
mod error;
mod events;
mod output;
mod projections;
mod rebuilds;

use std::io::Write;

use clap::{Args, Subcommand};

pub use checkpoint::CheckpointCommand;
pub use connection::StoreArgs;
pub use dead_letters::DeadLettersCommand;
pub use error::OpsError;
pub use events::EventsCommand;
pub use output::Format;
pub use projections::ProjectionsCommand;
pub use rebuilds::RebuildsCommand;

/// The operations subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Lists streams, shows a stream, or tails the global stream.
    Events(Group<EventsCommand>),
    /// Shows the projections' checkpoints, lag and dead letters.
    Projections(Group<ProjectionsCommand>),
    /// Lists, shows, retries or discards dead letters.
    DeadLetters(Group<DeadLettersCommand>),
    /// Resets a projection's checkpoint (the service rebuilds it).
    Checkpoint(Group<CheckpointCommand>),
    /// Shows the versions of a blue/green read model and a rebuild's
    /// progress.
    Rebuilds(Group<RebuildsCommand>),
}

/// A group of subcommands with the options they share.
#[derive(Debug, Clone, Args)]
pub struct Group<C: Subcommand> {
    /// The subcommand.
    #[command(subcommand)]
    pub command: C,
    /// Where the stores are.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// How to print listings.
    #[arg(long, value_enum, global = true, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs an operations command, printing to stdout.
///
/// # Errors
///
/// [`OpsError`] when a store cannot be reached, the schema or an argument
/// is wrong, or a store operation fails.
pub fn run(command: Command) -> Result<(), OpsError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| OpsError::Io {
            operation: "start the async runtime",
            source,
        })?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    runtime.block_on(execute(command, &mut out))
}

/// Runs an operations command, printing to `out`.
///
/// # Errors
///
/// As [`run`].
pub async fn execute(command: Command, out: &mut dyn Write) -> Result<(), OpsError> {
    match command {
        Command::Events(group) => {
            let events = group.stores.events().await?;
            events::run(group.command, &events, group.format, out).await
        }
        Command::Projections(group) => {
            let (events, projections) = group.stores.stores().await?;
            projections::run(group.command, &events, &projections, group.format, out).await
        }
        Command::DeadLetters(group) => {
            let (_, projections) = group.stores.stores().await?;
            dead_letters::run(group.command, &projections, group.format, out).await
        }
        Command::Checkpoint(group) => {
            let (_, projections) = group.stores.stores().await?;
            checkpoint::run(group.command, &projections, out).await
        }
        Command::Rebuilds(group) => {
            let events = group.stores.events().await?;
            rebuilds::run(group.command, &events, group.format, out).await
        }
    }
}
