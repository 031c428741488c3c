//! Scaffolding: `composable new` and `composable add`.
//!
//! - `composable new NAME` renders the project template (`template/` at the
//!   repository root, embedded in the binary at build time) into `./NAME`:
//!   the same files `cargo generate --path template` renders, since both
//!   render its liquid placeholders.
//! - `composable add aggregate|projection|saga NAME`, inside such a
//!   project, adds a module and a first test and registers the module.
//!
//! Both work out a [`Plan`] first and check it (names, existing files, the
//! project's registration points) before writing anything; `--dry-run`
//! prints the plan and writes nothing. Errors carry codes `CR-E0351` to
//! `CR-E0399` ([`codes`]).

mod add;
pub mod codes;
mod error;
mod names;
mod new;
mod plan;
mod render;

use std::path::PathBuf;

use clap::Subcommand;

pub use add::{Kind, PROJECTIONS_MARKER, plan_add};
pub use error::ScaffoldError;
pub use names::{ItemName, ProjectName, item_name, project_name};
pub use new::plan_new;
pub use plan::{Action, FileChange, Plan};

/// The scaffolding subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Creates a new service from the project template, in a new directory.
    ///
    /// The service has an aggregate, a projection in PostgreSQL, a saga fed
    /// through Redis Streams, tests, a README and a docker-compose.yml for
    /// its servers. It depends on the framework's git repository, or on a
    /// local clone with --framework-path. No network is needed: the template
    /// is part of this binary.
    New {
        /// The project's name: its directory and package name (ASCII
        /// letters, digits, `-` and `_`, starting with a letter).
        name: String,
        /// Depend on the framework clone in this directory (the one holding
        /// `framework/composable-rust`) instead of its git repository.
        #[arg(long, value_name = "DIR")]
        framework_path: Option<PathBuf>,
        /// Print the files that would be created, and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Adds an aggregate, a projection or a saga to a project made by `new`.
    ///
    /// Creates `src/<kind>s/<name>.rs` and a first test in `tests/<name>.rs`,
    /// and registers the module in `src/<kind>s/mod.rs` (a projection also in
    /// `App::catch_up_projections`, src/app.rs). Refuses to overwrite any
    /// file.
    Add {
        /// What to add.
        #[arg(value_enum)]
        kind: Kind,
        /// Its type name, in UpperCamelCase (`Account`, `AccountSummary`);
        /// the module is its snake_case (`account_summary`).
        name: String,
        /// The project (any directory inside it); default: the current
        /// directory.
        #[arg(long, value_name = "DIR")]
        project: Option<PathBuf>,
        /// Print the files that would be created or changed, and write
        /// nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs a scaffolding command, printing what it did (or would do) to
/// stdout.
///
/// # Errors
///
/// [`ScaffoldError`]: an invalid name, a file or directory in the way, not
/// a project from the template, or a failed write.
pub fn run(command: Command) -> Result<(), ScaffoldError> {
    let cwd = std::env::current_dir().map_err(|e| ScaffoldError::io("read", ".", e))?;
    let (plan, dry_run, next) = match command {
        Command::New {
            name,
            framework_path,
            dry_run,
        } => {
            let plan = plan_new(&name, &cwd, framework_path.as_deref())?;
            let next = format!(
                "\nCreated {name}. Next: cd {name}, start PostgreSQL and Redis (README.md), cargo test\n"
            );
            (plan, dry_run, next)
        }
        Command::Add {
            kind,
            name,
            project,
            dry_run,
        } => {
            let start = project.unwrap_or(cwd);
            (plan_add(kind, &name, &start)?, dry_run, String::new())
        }
    };
    if !dry_run {
        plan.apply()?;
    }
    print!("{}", plan.describe(dry_run));
    if !dry_run {
        print!("{next}");
    }
    Ok(())
}
