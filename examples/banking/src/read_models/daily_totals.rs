//! The daily totals read model: counters per day in Redis, for the
//! branch manager's dashboard: how much was deposited, withdrawn and
//! transferred each day, and how many times.
//!
//! One hash per day (`daily:2025-01-01`), one field per counter,
//! incremented with `HINCRBY`. Redis is **at least once**: a batch can be
//! applied again after a lost reply, and an increment is not idempotent,
//! so every event goes through [`RedisTx::apply_once`] first, a marker
//! committed in the same atomic script as the increments.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::redis::{RedisProjectionStore, RedisTx};
use composable_rust::{ProjectionError, Upcasters};

use crate::account::{AccountEvent, Movement};

/// The prefix of every key this projection writes.
const PREFIX: &str = "daily:";
/// The idempotency marker.
const MARKER: &str = "daily:applied";

/// One day's totals (cents, and counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DailyTotals {
    /// Cash deposited.
    pub deposits: i64,
    /// How many cash deposits.
    pub deposit_count: i64,
    /// Cash withdrawn.
    pub withdrawals: i64,
    /// How many cash withdrawals.
    pub withdrawal_count: i64,
    /// Money transferred (counted when it reached the target).
    pub transfers: i64,
    /// How many transfers reached their target.
    pub transfer_count: i64,
    /// Money refunded by undone transfers.
    pub refunds: i64,
}

impl DailyTotals {
    fn from_fields(fields: &BTreeMap<String, i64>) -> Self {
        let get = |name: &str| fields.get(name).copied().unwrap_or(0);
        Self {
            deposits: get("deposits"),
            deposit_count: get("deposit_count"),
            withdrawals: get("withdrawals"),
            withdrawal_count: get("withdrawal_count"),
            transfers: get("transfers"),
            transfer_count: get("transfer_count"),
            refunds: get("refunds"),
        }
    }
}

/// The hash of day `date`.
pub fn day_key(date: NaiveDate) -> String {
    format!("{PREFIX}{date}")
}

/// The totals of day `date`, as committed.
pub async fn daily_totals(
    store: &RedisProjectionStore,
    date: NaiveDate,
) -> Result<DailyTotals, ProjectionError> {
    Ok(DailyTotals::from_fields(
        &store.hash_counters(&day_key(date)).await?,
    ))
}

/// Keeps a hash of counters per day.
#[derive(Debug, Default)]
pub struct DailyTotalsProjection {
    upcasters: Upcasters,
}

#[async_trait]
impl Projection for DailyTotalsProjection {
    type Store = RedisProjectionStore;

    fn name(&self) -> &str {
        "banking-daily-totals"
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.stream_id.as_str().starts_with("account-")
    }

    async fn apply(&self, event: &StoredEvent, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        let (at, counters): (_, Vec<(&str, i64)>) =
            match decode::<AccountEvent>(event, &self.upcasters)? {
                Some(AccountEvent::Deposited {
                    amount,
                    movement,
                    at,
                    ..
                }) => match movement {
                    Movement::Cash => (at, vec![("deposits", amount), ("deposit_count", 1)]),
                    Movement::TransferIn { .. } => {
                        (at, vec![("transfers", amount), ("transfer_count", 1)])
                    }
                    Movement::Refund { .. } => (at, vec![("refunds", amount)]),
                    // Money never arrives as a transfer out.
                    Movement::TransferOut { .. } => return Ok(()),
                },
                Some(AccountEvent::Withdrawn {
                    amount,
                    movement: Movement::Cash,
                    at,
                    ..
                }) => (at, vec![("withdrawals", amount), ("withdrawal_count", 1)]),
                // Transfers are counted once, when they arrive.
                _ => return Ok(()),
            };
        if !tx.apply_once(MARKER, event.position).await? {
            return Ok(());
        }
        let key = day_key(at.date_naive());
        for (field, delta) in counters {
            tx.hincr_by(&key, field, delta)?;
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut RedisTx) -> Result<(), ProjectionError> {
        tx.delete_prefix(PREFIX).await.map(|_| ())
    }
}
