//! Designing events: a thin event names what happened; a fat one also
//! carries what its consumers act on, as of when it happened.

use serde::{Deserialize, Serialize};

// ANCHOR: events
/// Thin: the order line, by reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineAddedThin {
    pub sku: String,
    pub quantity: u32,
}

/// Fat: the price the order decided on travels with the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineAddedFat {
    pub sku: String,
    pub quantity: u32,
    pub unit_price_cents: u64,
    pub line_total_cents: u64,
}
// ANCHOR_END: events

// ANCHOR: consumers
/// An invoice line from a thin event must look the price up, and gets
/// today's price, not the one the customer agreed to.
pub fn invoice_thin(event: &LineAddedThin, price_today: impl Fn(&str) -> u64) -> u64 {
    price_today(&event.sku) * u64::from(event.quantity)
}

/// An invoice line from a fat event needs nothing else.
pub fn invoice_fat(event: &LineAddedFat) -> u64 {
    event.line_total_cents
}
// ANCHOR_END: consumers

// ANCHOR: test
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_change_after_the_order_changes_only_the_thin_invoice() {
        let thin = LineAddedThin {
            sku: "mug".into(),
            quantity: 2,
        };
        let fat = LineAddedFat {
            sku: "mug".into(),
            quantity: 2,
            unit_price_cents: 900,
            line_total_cents: 1800,
        };
        // The invoice is written a day later; the mug now costs 12.00.
        let price_today = |_: &str| 1200;
        assert_eq!(
            invoice_thin(&thin, price_today),
            2400,
            "wrong: not what was agreed"
        );
        assert_eq!(invoice_fat(&fat), 1800);
    }
}
// ANCHOR_END: test
