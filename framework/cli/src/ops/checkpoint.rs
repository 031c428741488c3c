//! `composable checkpoint reset`: makes a projection start over.
//!
//! Moving the checkpoint back alone would apply every event again on top
//! of the read model the projection already has (twice the deposits): the
//! read model must be reset with it, and only the service knows how (its
//! `Projection::reset`). So the command files a rebuild request, and the
//! service's projection manager rebuilds (resets the read model, the
//! checkpoint and the dead letters in one unit of work, then catches up)
//! the next time it looks.

use std::io::Write;

use clap::Subcommand;
use composable_rust_core::projection::ProjectionRequest;

use super::connection::Projections;
use super::error::OpsError;
use super::output;

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum CheckpointCommand {
    /// Asks the service to rebuild a projection from the first event.
    Reset {
        /// The projection.
        projection: String,
    },
}

/// Runs a `checkpoint` subcommand.
pub(crate) async fn run(
    command: CheckpointCommand,
    projections: &Projections,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let CheckpointCommand::Reset { projection } = command;
    let known: Vec<String> = projections
        .checkpoints()
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    if !known.contains(&projection) {
        return Err(OpsError::UnknownProjection { projection, known });
    }
    projections
        .request(&projection, ProjectionRequest::Rebuild)
        .await?;
    output::line(
        out,
        &format!(
            "rebuild of `{projection}` requested: the service's manager resets its read model \
             and checkpoint and catches up from the first event when it next looks (within \
             seconds while it runs, or when it next starts)"
        ),
    )
}
