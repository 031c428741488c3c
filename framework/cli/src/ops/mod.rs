//! Operations on a deployment's stores: events, projections, dead letters,
//! checkpoints.

use clap::Subcommand;

/// The operations subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lists streams, shows a stream, or tails the global stream.
    Events,
}

/// Runs an operations command.
///
/// # Errors
///
/// When the store cannot be reached or the command's input is wrong.
pub fn run(command: Command) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match command {
        Command::Events => Err("`composable events` is not built yet".into()),
    }
}
