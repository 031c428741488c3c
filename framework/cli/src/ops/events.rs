//! `composable events`: the streams of the event store, one stream's
//! events, and the tail of the global stream (filtered by type and stream).

use std::collections::VecDeque;
use std::io::Write;

use clap::Subcommand;
use composable_rust_core::projection::DeadLetter;
use composable_rust_core::{EventStore, EventStoreError, Position, StoredEvent, StreamId};
use composable_rust_postgres::PostgresEventStore;
use serde::Serialize;

use super::error::OpsError;
use super::output::{self, Format, Table};

/// Events read per query while walking the global stream.
const PAGE: usize = 1000;

/// What to show.
#[derive(Debug, Clone, Subcommand)]
pub enum EventsCommand {
    /// Lists the streams with their versions.
    List {
        /// Only streams whose id starts with this, e.g. `account-`.
        #[arg(long, default_value = "")]
        prefix: String,
        /// At most this many streams.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Shows one stream's events, oldest first.
    Show {
        /// The stream, e.g. `account-1`.
        stream: String,
        /// Only events from this version on (the first event is version 1).
        #[arg(long, default_value_t = 1)]
        from_version: u64,
    },
    /// Shows the last events of the global stream (all streams, in commit
    /// order), optionally filtered.
    Tail {
        /// How many events to show.
        #[arg(long, short = 'n', default_value_t = 20)]
        last: usize,
        /// Only events of this type (repeat for several).
        #[arg(long = "type", value_name = "TYPE")]
        types: Vec<String>,
        /// Only events of streams whose id starts with this.
        #[arg(long)]
        stream_prefix: Option<String>,
        /// Start after this position (`commit/sequence`) instead of the
        /// beginning, to walk fewer events.
        #[arg(long, value_name = "POSITION")]
        after: Option<String>,
        /// Keep printing new events as they are committed, one per line
        /// (JSON: one object per line), until interrupted (Ctrl-C).
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

/// An event as the commands print it in JSON.
#[derive(Debug, Serialize)]
struct EventView<'a> {
    position: String,
    stream_id: &'a str,
    stream_version: u64,
    event_type: &'a str,
    schema_version: u32,
    event_id: String,
    recorded_at: String,
    payload: &'a serde_json::Value,
    metadata: serde_json::Value,
}

impl<'a> EventView<'a> {
    fn new(event: &'a StoredEvent) -> Self {
        Self {
            position: event.position.to_string(),
            stream_id: event.stream_id.as_str(),
            stream_version: event.stream_version,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            event_id: event.event_id.to_string(),
            recorded_at: event.recorded_at.to_rfc3339(),
            payload: &event.payload,
            metadata: serde_json::to_value(&event.metadata).unwrap_or_default(),
        }
    }
}

/// Runs an `events` subcommand.
pub(crate) async fn run(
    command: EventsCommand,
    events: &PostgresEventStore,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    match command {
        EventsCommand::List { prefix, limit } => list(events, &prefix, limit, format, out).await,
        EventsCommand::Show {
            stream,
            from_version,
        } => show(events, &stream, from_version, format, out).await,
        EventsCommand::Tail {
            last,
            types,
            stream_prefix,
            after,
            follow,
        } => {
            let after = match after {
                Some(text) => parse_position(&text)?,
                None => Position::START,
            };
            let filter = Filter {
                types,
                stream_prefix,
            };
            let position = tail(events, after, last, &filter, format, follow, out).await?;
            if follow {
                follow_tail(events, position, &filter, format, out).await?;
            }
            Ok(())
        }
    }
}

async fn list(
    events: &PostgresEventStore,
    prefix: &str,
    limit: usize,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let streams = events.list_streams(prefix, limit).await?;
    if format == Format::Json {
        return output::json(out, &streams);
    }
    let mut table = Table::new(vec!["STREAM", "VERSION", "FIRST EVENT", "LAST EVENT"]);
    for stream in &streams {
        table.row(vec![
            stream.stream_id.clone(),
            stream.version.to_string(),
            output::time(stream.first_recorded_at),
            output::time(stream.last_recorded_at),
        ]);
    }
    table.print(out, "no streams")?;
    if streams.len() == limit {
        output::line(
            out,
            &format!("(the first {limit} streams; --limit for more, --prefix to narrow)"),
        )?;
    }
    Ok(())
}

async fn show(
    events: &PostgresEventStore,
    stream: &str,
    from_version: u64,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let stream_id = StreamId::new(stream)?;
    let loaded = events.load_stream(&stream_id, from_version).await?;
    if loaded.is_empty() && events.stream_version(&stream_id).await? == 0 {
        return Err(OpsError::StreamNotFound {
            stream: stream.to_owned(),
            schema: events.schema().to_owned(),
        });
    }
    if format == Format::Json {
        let views: Vec<EventView<'_>> = loaded.iter().map(EventView::new).collect();
        return output::json(out, &views);
    }
    let mut table = Table::new(vec!["VERSION", "POSITION", "TYPE", "RECORDED", "PAYLOAD"]);
    for event in &loaded {
        table.row(vec![
            event.stream_version.to_string(),
            event.position.to_string(),
            event.event_type.clone(),
            output::time(event.recorded_at),
            event.payload.to_string(),
        ]);
    }
    table.print(out, "no events from that version on")
}

/// Which events `tail` keeps.
#[derive(Debug)]
struct Filter {
    types: Vec<String>,
    stream_prefix: Option<String>,
}

impl Filter {
    fn keeps(&self, event: &StoredEvent) -> bool {
        (self.types.is_empty() || self.types.contains(&event.event_type))
            && self
                .stream_prefix
                .as_deref()
                .is_none_or(|prefix| event.stream_id.as_str().starts_with(prefix))
    }
}

/// Walks the global stream after `after`, printing the last `last` events
/// the filter keeps; returns the position it read up to. A stored row that cannot be read is shown as a
/// `$corrupt-event` stand-in (with its raw content as the payload), and
/// the walk goes on after it, as a projection manager does.
async fn tail(
    events: &PostgresEventStore,
    after: Position,
    last: usize,
    filter: &Filter,
    format: Format,
    follow: bool,
    out: &mut dyn Write,
) -> Result<Position, OpsError> {
    let total = events.count_after(after).await?;
    let bar = output::progress(total, format, "reading the global stream");
    let mut kept: VecDeque<StoredEvent> = VecDeque::with_capacity(last.min(PAGE));
    let mut keep = |event: StoredEvent| {
        if last > 0 && filter.keeps(&event) {
            if kept.len() == last {
                kept.pop_front();
            }
            kept.push_back(event);
        }
    };
    let mut position = after;
    loop {
        let page = read_page(events, position).await?;
        let Some(end) = page.last().map(|event| event.position) else {
            break;
        };
        bar.inc(page.len() as u64);
        page.into_iter().for_each(&mut keep);
        position = end;
    }
    bar.finish_and_clear();
    if follow {
        // One event per line from the start, so the lines that follow
        // read the same.
        for event in &kept {
            print_line(event, format, out)?;
        }
        return Ok(position);
    }
    if format == Format::Json {
        let views: Vec<EventView<'_>> = kept.iter().map(EventView::new).collect();
        output::json(out, &views)?;
        return Ok(position);
    }
    let mut table = Table::new(vec![
        "POSITION", "STREAM", "VERSION", "TYPE", "RECORDED", "PAYLOAD",
    ]);
    for event in &kept {
        table.row(vec![
            event.position.to_string(),
            event.stream_id.to_string(),
            event.stream_version.to_string(),
            event.event_type.clone(),
            output::time(event.recorded_at),
            output::cut(&event.payload.to_string(), 80),
        ]);
    }
    table.print(out, "no events")?;
    Ok(position)
}

/// Up to a page of events after `after`; an unreadable row comes back as
/// its `$corrupt-event` stand-in, alone, so the walk goes on after it.
async fn read_page(
    events: &PostgresEventStore,
    after: Position,
) -> Result<Vec<StoredEvent>, OpsError> {
    match events.read_all(after, PAGE).await {
        Ok(page) => Ok(page),
        Err(EventStoreError::CorruptEvent {
            position,
            stream_id,
            event_id,
            raw,
            ..
        }) => Ok(vec![DeadLetter::corrupt_event(
            position, &stream_id, event_id, raw,
        )]),
        Err(error) => Err(error.into()),
    }
}

/// Prints new events after `position` as they are committed, one line
/// each, until the process is interrupted. Woken by the store's
/// notifications (LISTEN/NOTIFY), and every second as a safety net.
async fn follow_tail(
    events: &PostgresEventStore,
    mut position: Position,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let mut notifications = events.subscribe();
    loop {
        notifications.borrow_and_update();
        let page = read_page(events, position).await?;
        if let Some(end) = page.last().map(|event| event.position) {
            for event in page.iter().filter(|event| filter.keeps(event)) {
                print_line(event, format, out)?;
            }
            out.flush().map_err(OpsError::write)?;
            position = end;
            continue;
        }
        // Nothing new: wait for a notification (or the safety net); if
        // the store cannot notify, poll.
        let second = std::time::Duration::from_secs(1);
        if let Ok(Err(_)) = tokio::time::timeout(second, notifications.changed()).await {
            tokio::time::sleep(second).await;
        }
    }
}

/// One event on one line: the table's columns, or a JSON object.
fn print_line(event: &StoredEvent, format: Format, out: &mut dyn Write) -> Result<(), OpsError> {
    let text = match format {
        Format::Json => serde_json::to_string(&EventView::new(event))
            .map_err(|error| OpsError::write(error.into()))?,
        Format::Table => format!(
            "{}  {}  {}  {}  {}  {}",
            event.position,
            event.stream_id,
            event.stream_version,
            event.event_type,
            output::time(event.recorded_at),
            output::cut(&event.payload.to_string(), 80),
        ),
    };
    output::line(out, &text)
}

/// Parses `commit/sequence`.
pub(crate) fn parse_position(text: &str) -> Result<Position, OpsError> {
    text.split_once('/')
        .and_then(|(commit, sequence)| {
            Some(Position::new(commit.parse().ok()?, sequence.parse().ok()?))
        })
        .ok_or_else(|| OpsError::InvalidPosition {
            text: text.to_owned(),
        })
}
