//! `composable rebuilds status --base <BASE>`: the versions of a PostgreSQL
//! blue/green read model (`BlueGreen`'s registry in the base schema) and
//! how far each one got: a building version's load as `applied/total
//! events (NN%)`, the live version's lag (`caught up` or `N events
//! behind`), `-` for a retired one. With `--watch`, a progress bar on
//! stderr follows the building version until it switches or disappears
//! (the rebuild failed), within `--timeout`.
//!
//! Everything is read through the postgres crate's public API (the base
//! is validated by `BlueGreen::new`, each version's schema by
//! `with_schema`): nothing here splices a name into SQL.

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Subcommand;
use composable_rust_core::{EventStore, Position};
use composable_rust_postgres::{
    BlueGreen, BlueGreenError, PostgresEventStore, PostgresProjectionStore, Version, VersionState,
};
use serde::Serialize;

use super::error::OpsError;
use super::output::{self, Format, Table};

/// What to show.
#[derive(Debug, Clone, Subcommand)]
pub enum RebuildsCommand {
    /// Lists the versions of a blue/green read model and a rebuild's
    /// progress; with --watch, follows the rebuild until it ends.
    Status {
        /// The base schema of the blue/green read model (the name given to
        /// BlueGreen::new, which readers query).
        #[arg(long)]
        base: String,
        /// Follow a building version with a progress bar (on stderr) until
        /// it switches or the rebuild fails, then print which version is
        /// live.
        #[arg(long)]
        watch: bool,
        /// How often --watch looks, e.g. 500ms, 1s, 2m.
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        interval: Duration,
        /// How long --watch waits for the rebuild to end before giving up
        /// (the rebuild goes on), e.g. 30s, 10m, 2h.
        #[arg(long, value_parser = parse_duration, default_value = "1h")]
        timeout: Duration,
    },
}

/// One version and how far it got, as printed in JSON.
#[derive(Debug, Clone, Serialize)]
struct VersionStatus {
    version: u32,
    state: &'static str,
    schema: String,
    switched_at: Option<DateTime<Utc>>,
    retired_at: Option<DateTime<Utc>>,
    /// The version's checkpoint (building and live versions).
    position: Option<String>,
    /// Events at or before the checkpoint (building and live versions).
    events_applied: Option<u64>,
    /// Events in the event store.
    events_total: u64,
    /// Events after the checkpoint (building and live versions).
    events_behind: Option<u64>,
}

/// What `--watch` prints in JSON when it ends.
#[derive(Debug, Serialize)]
struct WatchOutcome {
    /// The version that was building when the watch started.
    watched: Option<u32>,
    /// Whether readers were switched to it.
    switched: bool,
    /// The version readers see now.
    live: Option<u32>,
    versions: Vec<VersionStatus>,
}

/// Runs a `rebuilds` subcommand.
pub(crate) async fn run(
    command: RebuildsCommand,
    events: &PostgresEventStore,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let RebuildsCommand::Status {
        base,
        watch,
        interval,
        timeout,
    } = command;
    let versions = BlueGreen::new(events.pool().clone(), &base)?;
    let statuses = status(&versions, events).await?;
    if watch {
        return self::watch(&versions, events, statuses, format, interval, timeout, out).await;
    }
    if format == Format::Json {
        return output::json(out, &statuses);
    }
    print_table(&statuses, out)
}

/// Every version of `versions` with its progress.
async fn status(
    versions: &BlueGreen,
    events: &PostgresEventStore,
) -> Result<Vec<VersionStatus>, OpsError> {
    let listed = versions.versions().await.map_err(|error| {
        if missing_registry(&error) {
            OpsError::NoBlueGreenRegistry {
                base: versions.base().to_owned(),
            }
        } else {
            error.into()
        }
    })?;
    let total = events.count_after(Position::START).await?;
    let mut statuses = Vec::with_capacity(listed.len());
    for version in listed {
        statuses.push(version_status(version, events, total).await?);
    }
    Ok(statuses)
}

/// Whether reading the registry failed because there is none (no table, or
/// no base schema at all).
fn missing_registry(error: &BlueGreenError) -> bool {
    let BlueGreenError::Query { source, .. } = error else {
        return false;
    };
    source
        .as_database_error()
        .and_then(|database| database.code())
        // undefined_table, invalid_schema_name
        .is_some_and(|code| code == "42P01" || code == "3F000")
}

/// One version's progress against `total` events.
async fn version_status(
    version: Version,
    events: &PostgresEventStore,
    total: u64,
) -> Result<VersionStatus, OpsError> {
    let (position, applied, behind) = if version.state == VersionState::Retired {
        (None, None, None)
    } else {
        let checkpoint = checkpoint(&version.schema, events).await?;
        let behind = events
            .count_after(checkpoint.unwrap_or(Position::START))
            .await?;
        (
            checkpoint.map(|position| position.to_string()),
            Some(total.saturating_sub(behind)),
            Some(behind),
        )
    };
    Ok(VersionStatus {
        version: version.number,
        state: match version.state {
            VersionState::Building => "building",
            VersionState::Live => "live",
            VersionState::Retired => "retired",
        },
        schema: version.schema,
        switched_at: version.switched_at,
        retired_at: version.retired_at,
        position,
        events_applied: applied,
        events_total: total,
        events_behind: behind,
    })
}

/// The checkpoint of the projection in a version's schema; `None` before
/// its first batch (or before its tables exist).
async fn checkpoint(
    schema: &str,
    events: &PostgresEventStore,
) -> Result<Option<Position>, OpsError> {
    let status = events.clone().with_schema(schema)?.schema_status().await?;
    if !status.projection_tables {
        return Ok(None);
    }
    let store = PostgresProjectionStore::new(events.pool().clone()).with_schema(schema)?;
    // A version holds one projection; the furthest checkpoint if not.
    Ok(store
        .checkpoints()
        .await?
        .into_iter()
        .map(|checkpoint| checkpoint.position)
        .max())
}

/// The PROGRESS cell.
fn progress_cell(status: &VersionStatus) -> String {
    match (status.state, status.events_applied, status.events_behind) {
        ("building", Some(applied), _) => {
            let percent = applied
                .saturating_mul(100)
                .checked_div(status.events_total)
                .unwrap_or(100);
            format!("{applied}/{} events ({percent}%)", status.events_total)
        }
        ("live", _, Some(0)) => "caught up".to_owned(),
        ("live", _, Some(1)) => "1 event behind".to_owned(),
        ("live", _, Some(behind)) => format!("{behind} events behind"),
        _ => "-".to_owned(),
    }
}

fn print_table(statuses: &[VersionStatus], out: &mut dyn Write) -> Result<(), OpsError> {
    let mut table = Table::new(vec![
        "VERSION", "STATE", "SCHEMA", "SWITCHED", "RETIRED", "PROGRESS",
    ]);
    let time = |at: Option<DateTime<Utc>>| at.map_or_else(|| "-".to_owned(), output::time);
    for status in statuses {
        table.row(vec![
            status.version.to_string(),
            status.state.to_owned(),
            status.schema.clone(),
            time(status.switched_at),
            time(status.retired_at),
            progress_cell(status),
        ]);
    }
    table.print(
        out,
        "no versions yet: the registry is there, but no rebuild has started",
    )
}

fn building(statuses: &[VersionStatus]) -> Option<&VersionStatus> {
    statuses.iter().find(|status| status.state == "building")
}

fn live(statuses: &[VersionStatus]) -> Option<u32> {
    statuses
        .iter()
        .find(|status| status.state == "live")
        .map(|status| status.version)
}

/// `--watch`: polls until no version is building, updating a progress
/// bar, then prints the outcome and the versions.
async fn watch(
    versions: &BlueGreen,
    events: &PostgresEventStore,
    mut statuses: Vec<VersionStatus>,
    format: Format,
    interval: Duration,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let deadline = Instant::now() + timeout;
    let watched = building(&statuses).map(|status| status.version);
    if let Some(version) = building(&statuses)
        && format == Format::Table
    {
        output::line(
            out,
            &format!(
                "watching the rebuild of version {} of `{}`: {}",
                version.version,
                versions.base(),
                progress_cell(version)
            ),
        )?;
        out.flush().map_err(OpsError::write)?;
    }
    let label = watched.map_or_else(String::new, |number| format!("v{number}"));
    let bar = output::rate_progress(0, format, label);
    while let Some(version) = building(&statuses) {
        bar.set_length(version.events_total);
        bar.set_position(version.events_applied.unwrap_or_default());
        if Instant::now() >= deadline {
            bar.abandon();
            return Err(OpsError::WatchTimedOut {
                base: versions.base().to_owned(),
                version: version.version,
                timeout: format!("{timeout:?}"),
                progress: progress_cell(version),
            });
        }
        tokio::time::sleep(interval.min(deadline.saturating_duration_since(Instant::now()))).await;
        statuses = match status(versions, events).await {
            Ok(statuses) => statuses,
            // A failed rebuild drops its schema: reading its checkpoint
            // can fail in between. Look again; a lasting error stays.
            Err(first) => {
                let still = versions.versions().await?;
                if still
                    .iter()
                    .any(|v| v.state == VersionState::Building && Some(v.number) == watched)
                {
                    return Err(first);
                }
                status(versions, events).await?
            }
        };
    }
    bar.finish_and_clear();
    let live = live(&statuses);
    let switched = watched.is_some() && live == watched;
    if format == Format::Json {
        return output::json(
            out,
            &WatchOutcome {
                watched,
                switched,
                live,
                versions: statuses,
            },
        );
    }
    let live_text = live.map_or_else(
        || "no version is live".to_owned(),
        |number| format!("version {number} is live"),
    );
    let outcome = match watched {
        None => format!("no rebuild is running: {live_text}"),
        Some(number) if switched => {
            format!("the rebuild of version {number} switched readers: {live_text}")
        }
        Some(number) => format!(
            "the rebuild of version {number} ended without a switch (it failed or was \
             stopped, and its version was dropped; see the service's log): {live_text}"
        ),
    };
    output::line(out, &outcome)?;
    print_table(&statuses, out)
}

/// A duration as `500ms`, `30s`, `10m`, `2h`, or a bare number of seconds;
/// more than zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write e.g. 500ms, 30s, 10m or 2h"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => {
            return Err(format!(
                "`{text}` is not a duration: the unit must be ms, s, m or h (e.g. 30s)"
            ));
        }
    };
    if duration.is_zero() {
        return Err("the duration must be more than 0".to_owned());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &'static str, applied: Option<u64>, behind: Option<u64>) -> VersionStatus {
        VersionStatus {
            version: 1,
            state,
            schema: "b_v1".to_owned(),
            switched_at: None,
            retired_at: None,
            position: None,
            events_applied: applied,
            events_total: 40,
            events_behind: behind,
        }
    }

    #[test]
    fn progress_reads_per_state() {
        assert_eq!(
            progress_cell(&status("building", Some(10), Some(30))),
            "10/40 events (25%)"
        );
        assert_eq!(
            progress_cell(&status("live", Some(40), Some(0))),
            "caught up"
        );
        assert_eq!(
            progress_cell(&status("live", Some(39), Some(1))),
            "1 event behind"
        );
        assert_eq!(
            progress_cell(&status("live", Some(35), Some(5))),
            "5 events behind"
        );
        assert_eq!(progress_cell(&status("retired", None, None)), "-");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }
}
