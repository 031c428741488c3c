//! The shape of the read model, shared by the projection (which writes it)
//! and the queries (which read it): one JSON document per order in the
//! document table `order_history`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::order::{Line, Status};

/// The document table's name (in the read store's schema).
pub const TABLE: &str = "order_history";

/// One order as the order-history screens show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderView {
    pub order_id: String,
    pub customer: String,
    pub lines: Vec<Line>,
    /// In cents.
    pub total: u64,
    pub status: Status,
    /// RFC 3339 in UTC with a fixed number of digits, so that comparing
    /// the JSON strings (how the query sorts) compares the times.
    pub placed_at: String,
    pub cancel_reason: Option<String>,
}

impl OrderView {
    /// A freshly placed order.
    pub fn placed(order_id: &str, customer: String, lines: Vec<Line>, at: DateTime<Utc>) -> Self {
        Self {
            order_id: order_id.to_owned(),
            customer,
            total: lines
                .iter()
                .map(|line| u64::from(line.quantity) * line.unit_price)
                .sum(),
            lines,
            status: Status::Placed,
            placed_at: at.to_rfc3339_opts(SecondsFormat::Micros, true),
            cancel_reason: None,
        }
    }
}
