//! `composable`, the command-line tool of Composable Rust.
//!
//! - **Scaffolding** ([`scaffold`]): `composable new` renders the project
//!   template (the same files `cargo generate` renders), and
//!   `composable add aggregate|saga|projection` adds a module to a project.
//! - **Operations** ([`ops`]): type-free commands on a deployment's stores
//!   (events, projection status, dead letters, checkpoints), for PostgreSQL
//!   and Redis.
//!
//! The binary only parses arguments; everything is a library call, so tests
//! run the commands in-process.
#![deny(missing_docs)]

pub mod ops;
pub mod scaffold;

use clap::{CommandFactory, Parser, Subcommand};

/// The command line of `composable`.
#[derive(Debug, Parser)]
#[command(name = "composable", version, about = "Scaffold and operate Composable Rust services", long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand, grouped by the module that implements it.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffolding: `new`, `add`.
    #[command(flatten)]
    Scaffold(scaffold::Command),
    /// Operations on a deployment's stores.
    #[command(flatten)]
    Ops(ops::Command),
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Runs one parsed command line.
///
/// # Errors
///
/// Whatever the command reports; the binary prints it and exits with 1.
pub fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match cli.command {
        Command::Scaffold(command) => Ok(scaffold::run(command)?),
        Command::Ops(command) => Ok(ops::run(command)?),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "composable",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}
