//! Scaffolding: `composable new` and `composable add`.

use clap::Subcommand;

/// The scaffolding subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates a new service from the project template.
    New {
        /// The new project's name (also its directory).
        name: String,
    },
}

/// Runs a scaffolding command.
///
/// # Errors
///
/// When the files cannot be rendered or written.
pub fn run(command: Command) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match command {
        Command::New { name } => Err(format!("`composable new {name}` is not built yet").into()),
    }
}
