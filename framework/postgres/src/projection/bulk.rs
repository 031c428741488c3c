//! Bulk loading of a read-model version nobody reads yet (the new version
//! of a [blue/green rebuild](super::BlueGreen)): rows whose keys the load
//! has never written go out in one binary `COPY` per unit of work; the rest
//! (a key written again by a later batch) keep the usual multi-row upsert.
//!
//! `COPY` cannot update a row, so the load must know which keys are new.
//! It is the only writer of its version, so it can: [`BulkLoad`] remembers
//! a 64-bit hash of every key it has sent. A hash it has not seen means a
//! key never written (no false "new"); a hash it has seen (the key, or a
//! rare collision) sends the row through the upsert, which is right either
//! way. A unit of work that rolls back leaves its hashes behind, which
//! only costs upserts.
//!
//! Its units of work take turns ([`BulkLoad::turn`]): each starts its
//! transaction only once every unit of work begun before it has finished,
//! so the loader can apply a batch while the previous one commits without
//! a read missing that batch's writes.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::PgConnection;
use tokio::sync::OwnedMutexGuard;

use crate::schema::SchemaName;

/// The bulk-load state of one store: the `COPY` statement and the hashes
/// of every key sent so far.
pub(crate) struct BulkLoad {
    copy: String,
    /// The hashes of the keys sent (already hashes: see [`Prehashed`]).
    seen: Mutex<HashSet<u64, BuildHasherDefault<Prehashed>>>,
    hasher: std::hash::RandomState,
    /// Held by the unit of work whose transaction is open. tokio's mutex
    /// is fair, so units of work get it in the order they asked.
    turns: Arc<tokio::sync::Mutex<()>>,
}

/// A buffered batch of values split by [`BulkLoad::split`].
pub(crate) struct Split {
    /// Keys never written before, and their values: for `COPY`.
    pub(crate) new: Vec<(String, Vec<u8>)>,
    /// The other keys and values: for the upsert.
    pub(crate) keys: Vec<String>,
    /// The values of `keys`.
    pub(crate) data: Vec<Vec<u8>>,
}

impl BulkLoad {
    /// The bulk-load state for the `projection_data` table of `schema`
    /// (validated and quoted: the only text spliced into the statement).
    pub(crate) fn new(schema: &SchemaName) -> Self {
        Self {
            copy: format!(
                "COPY {}.projection_data (key, data) FROM STDIN (FORMAT binary)",
                schema.quoted()
            ),
            seen: Mutex::new(HashSet::default()),
            hasher: std::hash::RandomState::new(),
            turns: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Waits until every unit of work that asked before has finished;
    /// the turn lasts until the guard is dropped.
    pub(crate) async fn turn(&self) -> OwnedMutexGuard<()> {
        Arc::clone(&self.turns).lock_owned().await
    }

    /// Splits `rows` (sorted by key) into keys never sent before and the
    /// rest, remembering them all.
    pub(crate) fn split(&self, rows: Vec<(String, Vec<u8>)>) -> Split {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.reserve(rows.len());
        let mut split = Split {
            new: Vec::with_capacity(rows.len()),
            keys: Vec::new(),
            data: Vec::new(),
        };
        for (key, value) in rows {
            let mut hasher = self.hasher.build_hasher();
            hasher.write(key.as_bytes());
            if seen.insert(hasher.finish()) {
                split.new.push((key, value));
            } else {
                split.keys.push(key);
                split.data.push(value);
            }
        }
        split
    }

    /// Sends `rows` with one binary `COPY` on `connection` (inside the
    /// unit of work's transaction).
    pub(crate) async fn copy(
        &self,
        connection: &mut PgConnection,
        rows: &[(String, Vec<u8>)],
    ) -> Result<u64, sqlx::Error> {
        let mut copy = connection.copy_in_raw(&self.copy).await?;
        if let Err(error) = copy.send(encode(rows)).await {
            // Abort so the connection leaves copy mode; the transaction
            // rolls back when the unit of work is dropped.
            let _ = copy.abort("the bulk load failed").await;
            return Err(error);
        }
        copy.finish().await
    }
}

/// The hasher of [`BulkLoad`]'s set of key hashes: each value is already
/// a 64-bit hash of a key (with a random seed), so hashing it again would
/// only cost time (a load remembers millions of them).
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed (`write_u64`); fold anything else in.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// PostgreSQL's binary `COPY` format for `(key text, data bytea)` rows: a
/// header, then per row the field count and each field's length and bytes
/// (`text` is its UTF-8 bytes, `bytea` its raw bytes), then a trailer.
fn encode(rows: &[(String, Vec<u8>)]) -> Vec<u8> {
    let size: usize = rows.iter().map(|(k, v)| 10 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(19 + size + 2);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0_i32.to_be_bytes()); // flags
    out.extend_from_slice(&0_i32.to_be_bytes()); // header extension length
    for (key, value) in rows {
        out.extend_from_slice(&2_i16.to_be_bytes());
        push_field(&mut out, key.as_bytes());
        push_field(&mut out, value);
    }
    out.extend_from_slice(&(-1_i16).to_be_bytes());
    out
}

fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    // A field over 2 GiB cannot be stored anyway (1 GiB is PostgreSQL's
    // limit); saturating makes the server refuse it rather than misparse.
    let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_never_sent_are_new() {
        let bulk = BulkLoad::new(&SchemaName::new("s").unwrap());
        let rows = |keys: &[&str]| keys.iter().map(|k| ((*k).to_owned(), vec![1])).collect();
        let first = bulk.split(rows(&["a", "b"]));
        assert_eq!(first.new.len(), 2);
        let second = bulk.split(rows(&["b", "c"]));
        assert_eq!(second.new, vec![("c".to_owned(), vec![1])]);
        assert_eq!(second.keys, vec!["b".to_owned()]);
        assert!(bulk.copy.starts_with("COPY \"s\".projection_data"));
    }

    #[test]
    fn the_binary_format_has_header_rows_and_trailer() {
        let bytes = encode(&[("k".to_owned(), vec![7, 8])]);
        assert_eq!(&bytes[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(&bytes[19..21], &2_i16.to_be_bytes());
        assert_eq!(&bytes[21..25], &1_i32.to_be_bytes());
        assert_eq!(bytes[25], b'k');
        assert_eq!(&bytes[26..30], &2_i32.to_be_bytes());
        assert_eq!(&bytes[30..32], &[7, 8]);
        assert_eq!(&bytes[32..], &(-1_i16).to_be_bytes());
    }
}
