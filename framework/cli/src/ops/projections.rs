//! `composable projections status`: every projection of a store, where it
//! got to, how far behind it is (in events and in time), its dead letters
//! and the requests waiting for its manager.

use std::io::Write;

use chrono::Utc;
use clap::Subcommand;
use composable_rust_core::EventStore;
use composable_rust_core::projection::ProjectionRequest;
use composable_rust_postgres::PostgresEventStore;
use serde::Serialize;

use super::connection::Projections;
use super::error::OpsError;
use super::output::{self, Format, Table};

/// What to show.
#[derive(Debug, Clone, Subcommand)]
pub enum ProjectionsCommand {
    /// Shows every projection's checkpoint, lag, dead letters and pending
    /// requests.
    Status,
}

/// One projection's status, as printed in JSON.
#[derive(Debug, Serialize)]
struct Status {
    projection: String,
    position: String,
    events_behind: u64,
    seconds_behind: u64,
    dead_letters: usize,
    pending_requests: Vec<ProjectionRequest>,
}

/// Runs a `projections` subcommand.
pub(crate) async fn run(
    command: ProjectionsCommand,
    events: &PostgresEventStore,
    projections: &Projections,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let ProjectionsCommand::Status = command;
    let letters = projections.dead_letters(None).await?;
    let mut statuses = Vec::new();
    for (projection, position) in projections.checkpoints().await? {
        let events_behind = events.count_after(position).await?;
        // As the manager measures it: the age of the oldest event not yet
        // applied.
        let seconds_behind = match events.read_all(position, 1).await {
            Ok(next) => next.first().map_or(0, |event| {
                (Utc::now() - event.recorded_at)
                    .num_seconds()
                    .max(0)
                    .unsigned_abs()
            }),
            // An unreadable next row: the lag in events still says it.
            Err(composable_rust_core::EventStoreError::CorruptEvent { .. }) => 0,
            Err(error) => return Err(error.into()),
        };
        statuses.push(Status {
            dead_letters: letters
                .iter()
                .filter(|letter| letter.projection == projection)
                .count(),
            pending_requests: projections.pending_requests(&projection).await?,
            projection,
            position: position.to_string(),
            events_behind,
            seconds_behind,
        });
    }
    if format == Format::Json {
        return output::json(out, &statuses);
    }
    let mut table = Table::new(vec![
        "PROJECTION",
        "POSITION",
        "BEHIND",
        "LAG",
        "DEAD LETTERS",
        "REQUESTS",
    ]);
    for status in &statuses {
        table.row(vec![
            status.projection.clone(),
            status.position.clone(),
            match status.events_behind {
                1 => "1 event".to_owned(),
                n => format!("{n} events"),
            },
            duration(status.seconds_behind),
            status.dead_letters.to_string(),
            requests(&status.pending_requests),
        ]);
    }
    table.print(out, "no projections have a checkpoint in this store")
}

/// `1h 02m 03s`, `2m 03s` or `3s`.
fn duration(seconds: u64) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m {seconds:02}s"),
        _ => format!("{hours}h {minutes:02}m {seconds:02}s"),
    }
}

/// The pending requests in a few words: `rebuild, 2 retries`, or `-`.
fn requests(pending: &[ProjectionRequest]) -> String {
    let rebuild = pending.contains(&ProjectionRequest::Rebuild);
    let retries = pending.len() - usize::from(rebuild);
    let mut parts = Vec::new();
    if rebuild {
        parts.push("rebuild".to_owned());
    }
    match retries {
        0 => {}
        1 => parts.push("1 retry".to_owned()),
        n => parts.push(format!("{n} retries")),
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(61), "1m 01s");
        assert_eq!(duration(3723), "1h 02m 03s");
    }

    #[test]
    fn requests_are_summed_up() {
        let id = uuid::Uuid::nil();
        assert_eq!(requests(&[]), "-");
        assert_eq!(requests(&[ProjectionRequest::Rebuild]), "rebuild");
        assert_eq!(
            requests(&[
                ProjectionRequest::RetryDeadLetter(id),
                ProjectionRequest::Rebuild,
                ProjectionRequest::RetryDeadLetter(uuid::Uuid::max()),
            ]),
            "rebuild, 2 retries"
        );
    }
}
