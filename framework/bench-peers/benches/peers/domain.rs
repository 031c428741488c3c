//! The one domain every contender runs: a ledger whose commands post
//! entries, with the same ~200-byte events and the same state.

use serde::{Deserialize, Serialize};

/// The only event: an entry posted to the ledger. Its serde form is an
/// externally tagged enum, so it is stored the same way by every contender
/// (type `Posted`, payload the object of about 200 bytes of JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LedgerEvent {
    /// One entry.
    Posted {
        seq: u64,
        account: String,
        amount_cents: u64,
        currency: String,
        memo: String,
    },
}

/// The entry with sequence number `seq`.
pub fn event(seq: u64) -> LedgerEvent {
    LedgerEvent::Posted {
        seq,
        account: format!("ACC-{:010}", seq.wrapping_mul(7_919) % 10_000_000_000),
        amount_cents: 100 + seq % 9_900,
        currency: "EUR".to_owned(),
        memo: "monthly subscription, invoice attached, paid by direct debit from the \
               customer's account; refund on request within thirty days"
            .to_owned(),
    }
}

#[allow(dead_code)] // used by the peers bench, not by breakdown
/// The bytes of the stored payload (the variant's content, as JSON text).
pub fn payload_bytes() -> usize {
    let LedgerEvent::Posted {
        seq,
        account,
        amount_cents,
        currency,
        memo,
    } = event(123_456);
    serde_json::json!({
        "seq": seq, "account": account, "amount_cents": amount_cents,
        "currency": currency, "memo": memo,
    })
    .to_string()
    .len()
}

/// The state: how many entries, their total, and a checksum over the
/// sequence numbers in order, so an event applied twice, skipped or out of
/// order shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub entries: u64,
    pub total_cents: u64,
    pub checksum: u64,
}

impl Ledger {
    pub fn apply(&mut self, event: &LedgerEvent) {
        let LedgerEvent::Posted {
            seq, amount_cents, ..
        } = event;
        self.entries += 1;
        self.total_cents += amount_cents;
        self.checksum = self.checksum.wrapping_mul(1_000_003).wrapping_add(*seq);
    }

    /// The events of a command posting `count` entries from `first`:
    /// refused (as a real rule would) if the ledger is full.
    pub fn decide(&self, first: u64, count: usize) -> Result<Vec<LedgerEvent>, LedgerFull> {
        if self.entries + count as u64 > 10_000_000 {
            return Err(LedgerFull);
        }
        Ok((first..first + count as u64).map(event).collect())
    }

    /// The state after replaying `events`.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a LedgerEvent>) -> Self {
        let mut ledger = Self::default();
        for event in events {
            ledger.apply(event);
        }
        ledger
    }
}

/// Why a command is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerFull;

impl std::fmt::Display for LedgerFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the ledger is full")
    }
}

impl std::error::Error for LedgerFull {}

/// A command: post `count` entries numbered from `first`.
#[derive(Debug, Clone, Copy)]
pub struct Post {
    pub first: u64,
    pub count: usize,
}
