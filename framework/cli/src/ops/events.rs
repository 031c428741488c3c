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
        } => {
            let after = match after {
                Some(text) => parse_position(&text)?,
                None => Position::START,
            };
            let filter = Filter {
                types,
                stream_prefix,
            };
            tail(events, after, last, &filter, format, out).await
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
    table.print(out, "no streams")
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

/// Walks the global stream after `after`, keeping the last `last` events
/// the filter keeps. A stored row that cannot be read is shown as a
/// `$corrupt-event` stand-in (with its raw content as the payload), and
/// the walk goes on after it, as a projection manager does.
async fn tail(
    events: &PostgresEventStore,
    after: Position,
    last: usize,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
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
        let page = match events.read_all(position, PAGE).await {
            Ok(page) => page,
            Err(EventStoreError::CorruptEvent {
                position: at,
                stream_id,
                event_id,
                raw,
                ..
            }) => vec![DeadLetter::corrupt_event(at, &stream_id, event_id, raw)],
            Err(error) => return Err(error.into()),
        };
        let Some(end) = page.last().map(|event| event.position) else {
            break;
        };
        bar.inc(page.len() as u64);
        page.into_iter().for_each(&mut keep);
        position = end;
    }
    bar.finish_and_clear();
    if format == Format::Json {
        let views: Vec<EventView<'_>> = kept.iter().map(EventView::new).collect();
        return output::json(out, &views);
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
    table.print(out, "no events")
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
