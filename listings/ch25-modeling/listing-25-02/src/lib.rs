//! Listing 25-2: modeling recipes. Deleting data (soft delete, a tombstone
//! that removes read-model rows, and GDPR erasure by crypto-shredding) and
//! enforcing uniqueness across aggregates.

pub mod deletion;
pub mod uniqueness;
