//! Payments: the gateway the shop charges through, and a fake one for
//! development and tests. A real gateway (a card processor's API) would
//! implement the same trait.

use std::collections::HashMap;
use std::sync::Mutex;

use composable_rust::prelude::*;

use crate::catalog::Cents;

// ANCHOR: gateway
/// What a charge came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    /// The money was taken.
    Approved,
    /// The provider refused, and why (a business answer, not a failure).
    Declined { reason: String },
}

/// The gateway could not give an answer.
#[derive(Debug, thiserror::Error)]
#[error("the payment provider did not answer ({0}); the charge is sent again later")]
pub struct PaymentUnavailable(pub String);

impl PaymentUnavailable {
    /// The error's stable code.
    pub fn code(&self) -> &'static str {
        "STORE-E0011"
    }
}

/// Takes customers' money.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Charges `amount`. `key` is an idempotency key: charging again with
    /// the same key charges nothing more and answers as the first time.
    async fn charge(&self, key: &str, amount: Cents) -> Result<Charge, PaymentUnavailable>;
}
// ANCHOR_END: gateway

// ANCHOR: fake
/// A gateway in memory that approves every charge up to `limit` cents and
/// declines the rest, and remembers its answers by key.
#[derive(Debug)]
pub struct FakeGateway {
    limit: Cents,
    answers: Mutex<HashMap<String, (Cents, Charge)>>,
}

impl FakeGateway {
    /// A gateway that declines charges over `limit` cents.
    pub fn new(limit: Cents) -> Self {
        Self {
            limit,
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// How much it has taken, all approved charges together.
    pub fn taken(&self) -> Cents {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers
            .values()
            .filter(|(_, charge)| *charge == Charge::Approved)
            .map(|(amount, _)| amount)
            .sum()
    }
}

#[async_trait]
impl PaymentGateway for FakeGateway {
    async fn charge(&self, key: &str, amount: Cents) -> Result<Charge, PaymentUnavailable> {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let (_, charge) = answers.entry(key.to_string()).or_insert_with(|| {
            let charge = if amount > self.limit {
                Charge::Declined {
                    reason: format!("{amount} cents is over the card's limit of {}", self.limit),
                }
            } else {
                Charge::Approved
            };
            (amount, charge)
        });
        Ok(charge.clone())
    }
}
// ANCHOR_END: fake
