//! [`KnownVersion`]: a stream version the store itself reported, after
//! which [`EventStore::append_after`](super::EventStore::append_after)
//! appends without asking the store for the stream's version first.

use crate::event::ExpectedVersion;

/// A version of a stream that its store has shown to exist: the version of
/// an event the store returned when the stream was read, the stream's
/// version after an append the store confirmed, or 0 (before the first
/// event).
///
/// Events are never deleted, so a stream's version only grows: a stream
/// is at a known version or past it, never behind. An append right after
/// a known version therefore cannot leave a gap in the stream; the only
/// question left is whether another writer appended first, and a backend
/// may let its unique key on (stream, version) answer it, instead of
/// reading the stream's version before writing (see
/// [`EventStore::append_after`](super::EventStore::append_after)).
///
/// The promise holds only for numbers that came from the store, so only
/// this crate makes them: the
/// [`AggregateRepository`](crate::AggregateRepository) does, for the
/// aggregates it loaded or appended to. A version supplied by a caller
/// goes through [`append`](super::EventStore::append) and its
/// [`ExpectedVersion`] check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KnownVersion(u64);

impl KnownVersion {
    /// `version`, which the caller read from the store (see the type's
    /// documentation).
    pub(crate) const fn new(version: u64) -> Self {
        Self(version)
    }

    /// The version.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The same version as an ordinary append expects it:
    /// [`ExpectedVersion::NoStream`] for 0, [`ExpectedVersion::Exact`]
    /// otherwise.
    pub const fn expected(self) -> ExpectedVersion {
        match self.0 {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expects_no_stream_at_zero_and_the_exact_version_otherwise() {
        assert_eq!(KnownVersion::new(0).expected(), ExpectedVersion::NoStream);
        assert_eq!(KnownVersion::new(7).expected(), ExpectedVersion::Exact(7));
        assert_eq!(KnownVersion::new(7).get(), 7);
    }
}
