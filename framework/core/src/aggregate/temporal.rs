//! Temporal queries: an aggregate's state as it was after a given version
//! of its stream, or at a given time ([`AggregateRepository::load_at`]).
//!
//! Event sourcing keeps every change, so "what was the balance on March
//! 1st?" is a replay that stops early. The only care needed is with
//! snapshots: a snapshot may stand in for the events before it only when it
//! is not past the target, so a temporal load uses the stream's snapshot
//! when it is at or before the target and replays from the start
//! otherwise.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use crate::error::{coded_error, codes};
use crate::event::{StoredEvent, StreamId, decode};
use crate::event_store::{EventStore, EventStoreError};

use super::{Aggregate, AggregateRepository, Loaded};

/// The point in a stream's history a temporal load stops at.
///
/// ```
/// use composable_rust_core::aggregate::AsOf;
///
/// let before_anything = AsOf::Version(0);
/// let march_1st = AsOf::Time("2026-03-01T00:00:00Z".parse().unwrap());
/// assert_ne!(before_anything, march_1st);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsOf {
    /// After the stream's first `n` events; 0 is the state before any
    /// event (the aggregate's `Default`).
    Version(u64),
    /// After the events recorded at or before this time: the stream is
    /// replayed in version order up to the first event recorded later. A
    /// time before the first event gives version 0; a time after the last
    /// gives the latest state.
    Time(DateTime<Utc>),
}

impl std::fmt::Display for AsOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Version(version) => write!(f, "version {version}"),
            Self::Time(time) => write!(f, "{}", time.format("%Y-%m-%d %H:%M:%S%.3f UTC")),
        }
    }
}

/// Why text is not an [`AsOf`].
#[coded_error]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AsOfError {
    /// The text is neither a version nor a time.
    #[code(codes::INVALID_AS_OF, permanent)]
    #[error(
        "`{text}` is neither a version nor a time; write a version as a whole number \
         (`42`, or `v42`), a time in RFC 3339 (`2026-03-01T09:30:00Z`), or a date \
         (`2026-03-01`, midnight UTC)"
    )]
    Invalid {
        /// The text given.
        text: String,
    },
}

impl FromStr for AsOf {
    type Err = AsOfError;

    /// A version (`42`, `v42`), a time in RFC 3339
    /// (`2026-03-01T09:30:00Z`), or a date (`2026-03-01`: its first
    /// instant, UTC), as a command line takes them.
    ///
    /// ```
    /// use composable_rust_core::aggregate::AsOf;
    ///
    /// assert_eq!("v3".parse(), Ok(AsOf::Version(3)));
    /// let march_1st: AsOf = "2026-03-01".parse().unwrap();
    /// assert_eq!(march_1st, "2026-03-01T00:00:00Z".parse().unwrap());
    /// assert!("yesterday".parse::<AsOf>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, AsOfError> {
        let text = text.trim();
        let digits = text.strip_prefix('v').unwrap_or(text);
        if let Ok(version) = digits.parse::<u64>() {
            return Ok(Self::Version(version));
        }
        if let Ok(time) = DateTime::parse_from_rfc3339(text) {
            return Ok(Self::Time(time.with_timezone(&Utc)));
        }
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(Self::Time(date.and_time(NaiveTime::MIN).and_utc()));
        }
        Err(AsOfError::Invalid {
            text: text.to_owned(),
        })
    }
}

impl<A: Aggregate, S: EventStore> AggregateRepository<A, S> {
    /// The aggregate as it was at `as_of`: after a given version of its
    /// stream, or after the events recorded up to a given time. Returns
    /// the state and the version it reflects, like [`load`](Self::load).
    ///
    /// The stream's snapshot is used only when it is not past the target:
    /// for [`AsOf::Version`] when its version is at most the one asked for;
    /// for [`AsOf::Time`] when the last event it includes was recorded at
    /// or before the time. Otherwise the stream is replayed from its first
    /// event. Events are upcast as in `load`.
    ///
    /// # Errors
    ///
    /// [`EventStoreError::VersionPastEnd`] (`CR-E0021`) for a version the
    /// stream has not reached; the store's errors, and decoding errors as
    /// `load` reports them.
    pub async fn load_at(
        &self,
        stream_id: &StreamId,
        as_of: AsOf,
    ) -> Result<Loaded<A>, EventStoreError> {
        self.rebuild_at(stream_id, as_of)
            .await
            .map(|(loaded, _)| loaded)
    }

    /// [`load_at`](Self::load_at), plus the stream's events after the
    /// target, as loaded (the [`ReplayDebugger`](super::ReplayDebugger)
    /// steps through them).
    pub(super) async fn rebuild_at(
        &self,
        stream_id: &StreamId,
        as_of: AsOf,
    ) -> Result<(Loaded<A>, Vec<StoredEvent>), EventStoreError> {
        let snapshot = self.usable_snapshot(stream_id).await?;
        let (start, events) = match as_of {
            AsOf::Version(target) => {
                // A snapshot past the target cannot be unwound: start over.
                let start = snapshot.filter(|(_, version)| *version <= target);
                let from = start.as_ref().map_or(0, |(_, version)| *version);
                (start, self.store().load_stream(stream_id, from + 1).await?)
            }
            AsOf::Time(time) => self.start_for_time(stream_id, snapshot, time).await?,
        };
        let (mut state, snapshot_version) = match start {
            Some((state, version)) => (state, Some(version).filter(|v| *v > 0)),
            None => (A::default(), None),
        };
        let mut version = snapshot_version.unwrap_or(0);
        let mut events_replayed = 0;
        let mut rest = events.into_iter().peekable();
        while let Some(event) = rest.next_if(|event| is_before(event, as_of)) {
            if let Some(decoded) = decode::<A::Event>(&event, self.upcasters())? {
                state.apply(&decoded);
                events_replayed += 1;
            }
            version = event.stream_version;
        }
        if let AsOf::Version(requested) = as_of
            && version < requested
        {
            return Err(EventStoreError::VersionPastEnd {
                stream_id: stream_id.to_string(),
                requested,
                current: version,
            });
        }
        let loaded = Loaded {
            state,
            version,
            snapshot_version,
            events_replayed,
        };
        Ok((loaded, rest.collect()))
    }

    /// Where a load as of `time` starts, and the events from there: the
    /// snapshot when the event it ends with was recorded by `time` (one
    /// read, starting at that event to check its time), else the start of
    /// the stream.
    async fn start_for_time(
        &self,
        stream_id: &StreamId,
        snapshot: Option<(A, u64)>,
        time: DateTime<Utc>,
    ) -> Result<(Option<(A, u64)>, Vec<StoredEvent>), EventStoreError> {
        if let Some((state, version)) = snapshot {
            let mut events = self.store().load_stream(stream_id, version).await?;
            let covered = events
                .first()
                .is_some_and(|last| last.stream_version == version && last.recorded_at <= time);
            if covered {
                events.remove(0);
                return Ok((Some((state, version)), events));
            }
        }
        Ok((None, self.store().load_stream(stream_id, 0).await?))
    }
}

/// Whether `event` is part of the state as of `as_of`.
fn is_before(event: &StoredEvent, as_of: AsOf) -> bool {
    match as_of {
        AsOf::Version(version) => event.stream_version <= version,
        AsOf::Time(time) => event.recorded_at <= time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CodedError;

    #[test]
    fn versions_times_and_dates_parse_and_the_rest_is_a_coded_error() {
        let at = |text: &str| text.parse::<AsOf>();
        assert_eq!(at("0"), Ok(AsOf::Version(0)));
        assert_eq!(at(" v12 "), Ok(AsOf::Version(12)));
        let nine_thirty = "2026-03-01T09:30:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(at("2026-03-01T09:30:00Z"), Ok(AsOf::Time(nine_thirty)));
        assert_eq!(at("2026-03-01T10:30:00+01:00"), Ok(AsOf::Time(nine_thirty)));
        let midnight = "2026-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(at("2026-03-01"), Ok(AsOf::Time(midnight)));
        for bad in ["", "v", "-1", "yesterday", "2026-13-01", "v1.5"] {
            let error = at(bad).unwrap_err();
            assert_eq!(error.code().as_str(), "CR-E0023");
            assert!(error.to_string().contains(&format!("`{bad}`")), "{error}");
        }
    }
}
