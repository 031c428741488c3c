//! `composable dead-letters`: list, show, retry and discard the events a
//! projection gave up on.
//!
//! `retry` cannot apply the event itself (it does not know the
//! projection's types): it files a request in the projection's store, and
//! the service's projection manager applies the event the next time it
//! looks (see `ProjectionRequest`). `discard` removes the letter at once.

use std::io::Write;

use clap::Subcommand;
use composable_rust_core::projection::{DeadLetter, ProjectionRequest};
use serde::Serialize;
use uuid::Uuid;

use super::connection::Projections;
use super::error::OpsError;
use super::output::{self, Format, Table};

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum DeadLettersCommand {
    /// Lists the dead letters, oldest first.
    List {
        /// Only this projection's.
        #[arg(long)]
        projection: Option<String>,
    },
    /// Shows one dead letter completely: the event, the error, the attempts.
    Show {
        /// The projection.
        projection: String,
        /// The event's id.
        event_id: Uuid,
    },
    /// Asks the service's projection manager to apply the event again
    /// (after a fix); it removes the letter if it now succeeds.
    Retry {
        /// The projection.
        projection: String,
        /// The event's id.
        event_id: Uuid,
    },
    /// Removes a dead letter without applying its event.
    Discard {
        /// The projection.
        projection: String,
        /// The event's id.
        event_id: Uuid,
    },
}

/// A dead letter as printed in JSON: the letter and whether a retry is
/// pending.
#[derive(Debug, Serialize)]
struct LetterView<'a> {
    #[serde(flatten)]
    letter: &'a DeadLetter,
    retry_requested: bool,
}

/// Runs a `dead-letters` subcommand.
pub(crate) async fn run(
    command: DeadLettersCommand,
    projections: &Projections,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    match command {
        DeadLettersCommand::List { projection } => {
            list(projections, projection.as_deref(), format, out).await
        }
        DeadLettersCommand::Show {
            projection,
            event_id,
        } => show(projections, &projection, event_id, format, out).await,
        DeadLettersCommand::Retry {
            projection,
            event_id,
        } => {
            if !projections
                .request(&projection, ProjectionRequest::RetryDeadLetter(event_id))
                .await?
            {
                return Err(OpsError::DeadLetterNotFound {
                    projection,
                    event_id,
                });
            }
            output::line(
                out,
                &format!(
                    "retry of event {event_id} requested: the service's `{projection}` manager \
                     applies it when it next looks (within seconds while it runs, or when it \
                     next starts); the letter goes away if it succeeds"
                ),
            )
        }
        DeadLettersCommand::Discard {
            projection,
            event_id,
        } => {
            if !projections.discard(&projection, event_id).await? {
                return Err(OpsError::DeadLetterNotFound {
                    projection,
                    event_id,
                });
            }
            output::line(
                out,
                &format!("discarded the dead letter of event {event_id} of `{projection}`"),
            )
        }
    }
}

/// Whether a retry of `letter` is waiting.
async fn retry_requested(projections: &Projections, letter: &DeadLetter) -> Result<bool, OpsError> {
    Ok(projections
        .pending_requests(&letter.projection)
        .await?
        .contains(&ProjectionRequest::RetryDeadLetter(letter.event.event_id)))
}

async fn list(
    projections: &Projections,
    projection: Option<&str>,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let letters = projections.dead_letters(projection).await?;
    let mut views = Vec::with_capacity(letters.len());
    for letter in &letters {
        views.push(LetterView {
            letter,
            retry_requested: retry_requested(projections, letter).await?,
        });
    }
    if format == Format::Json {
        return output::json(out, &views);
    }
    let mut table = Table::new(vec![
        "PROJECTION",
        "EVENT ID",
        "STREAM",
        "TYPE",
        "ATTEMPTS",
        "FAILED",
        "RETRY",
        "ERROR",
    ]);
    for view in &views {
        let letter = view.letter;
        table.row(vec![
            letter.projection.clone(),
            letter.event.event_id.to_string(),
            stream_at(letter),
            letter.event.event_type.clone(),
            letter.attempts.to_string(),
            output::time(letter.failed_at),
            if view.retry_requested {
                "requested"
            } else {
                "-"
            }
            .to_owned(),
            output::cut(&letter.error, 60),
        ]);
    }
    table.print(out, "no dead letters")
}

async fn show(
    projections: &Projections,
    projection: &str,
    event_id: Uuid,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let letters = projections.dead_letters(Some(projection)).await?;
    let Some(letter) = letters
        .iter()
        .find(|letter| letter.event.event_id == event_id)
    else {
        return Err(OpsError::DeadLetterNotFound {
            projection: projection.to_owned(),
            event_id,
        });
    };
    let view = LetterView {
        letter,
        retry_requested: retry_requested(projections, letter).await?,
    };
    if format == Format::Json {
        return output::json(out, &view);
    }
    let event = &letter.event;
    let payload = serde_json::to_string_pretty(&event.payload).unwrap_or_default();
    // A row that could not be read has a stand-in event: no version and no
    // time worth printing (the raw row is the payload).
    let (version, recorded) = if letter.is_corrupt_event() {
        ("unreadable row".to_owned(), "-".to_owned())
    } else {
        (
            format!("version {}", event.stream_version),
            output::time(event.recorded_at),
        )
    };
    let lines = [
        format!("projection:     {}", letter.projection),
        format!("event id:       {}", event.event_id),
        format!("stream:         {} ({version})", event.stream_id),
        format!("position:       {}", event.position),
        format!(
            "type:           {} (schema version {})",
            event.event_type, event.schema_version
        ),
        format!("recorded:       {recorded}"),
        format!("attempts:       {}", letter.attempts),
        format!("failed:         {}", output::time(letter.failed_at)),
        format!(
            "retry:          {}",
            if view.retry_requested {
                "requested"
            } else {
                "-"
            }
        ),
        format!("error:          {}", letter.error),
        format!(
            "payload:        {}",
            payload.replace('\n', "\n                ")
        ),
    ];
    for text in lines {
        output::line(out, &text)?;
    }
    Ok(())
}

/// `stream@version`, or `stream@?` for a row that could not be read.
fn stream_at(letter: &DeadLetter) -> String {
    if letter.is_corrupt_event() {
        format!("{}@?", letter.event.stream_id)
    } else {
        format!("{}@{}", letter.event.stream_id, letter.event.stream_version)
    }
}
