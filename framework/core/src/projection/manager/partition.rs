//! [`Partition`]: one of a fixed number of slices of the streams, chosen by
//! a stable hash of the stream id, so several workers can share one
//! projection (or saga runtime) and each stream stays with one of them.
//!
//! The hash is FNV-1a (64 bits) of the key's UTF-8 bytes: written out here
//! rather than taken from `std`, whose `DefaultHasher` may change between
//! Rust releases, because every process of a deployment (and every
//! release of it) must put a stream in the same partition.

use std::fmt;
use std::num::NonZeroU32;

use crate::event::StoredEvent;

/// Partition `index` of `count`: the streams whose id hashes to `index`
/// modulo `count`.
///
/// Every event of a stream lands in the same partition, so a worker that
/// owns a partition sees that stream's events in order.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use composable_rust_core::projection::manager::Partition;
///
/// let count = NonZeroU32::new(4).unwrap();
/// let home = Partition::of("order-17", count);
/// assert_eq!(home, Partition::of("order-17", count), "stable");
/// assert!(home.contains("order-17"));
/// assert_eq!(Partition::all(count).filter(|p| p.contains("order-17")).count(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    index: u32,
    count: NonZeroU32,
}

impl Partition {
    /// Partition `index` of `count`, or `None` unless `index < count`.
    pub fn new(index: u32, count: NonZeroU32) -> Option<Self> {
        (index < count.get()).then_some(Self { index, count })
    }

    /// The partition `key` (a stream id, a saga id) belongs to.
    pub fn of(key: &str, count: NonZeroU32) -> Self {
        let index = stable_hash(key) % u64::from(count.get());
        Self {
            index: u32::try_from(index).expect("a remainder of a u32 fits a u32"),
            count,
        }
    }

    /// Every partition of `count`, in index order.
    pub fn all(count: NonZeroU32) -> impl Iterator<Item = Self> {
        (0..count.get()).map(move |index| Self { index, count })
    }

    /// This partition's index, from 0.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many partitions there are.
    pub fn count(&self) -> NonZeroU32 {
        self.count
    }

    /// Whether `key` belongs to this partition.
    pub fn contains(&self, key: &str) -> bool {
        Self::of(key, self.count) == *self
    }

    /// Whether `event`'s stream belongs to this partition.
    pub fn contains_event(&self, event: &StoredEvent) -> bool {
        self.contains(event.stream_id.as_str())
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64 bits: fixed forever (see the module comment).
fn stable_hash(key: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    key.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a_and_never_changes() {
        // Published FNV-1a 64 test vectors: a changed hash would move
        // streams between partitions in a running deployment.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn keys_spread_over_every_partition() {
        let count = NonZeroU32::new(8).unwrap();
        let mut seen = [0u32; 8];
        for n in 0..8000 {
            seen[Partition::of(&format!("order-{n}"), count).index() as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (700..1300).contains(&n)), "{seen:?}");
    }

    #[test]
    fn new_refuses_an_index_out_of_range() {
        let count = NonZeroU32::new(2).unwrap();
        assert!(Partition::new(1, count).is_some());
        assert!(Partition::new(2, count).is_none());
        assert_eq!(Partition::new(1, count).unwrap().to_string(), "1/2");
    }
}
