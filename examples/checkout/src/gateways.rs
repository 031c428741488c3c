//! The outside world: an inventory system and a payment provider, behind
//! traits, with fakes for the demo and the tests.
//!
//! Both take an **idempotency key** (the saga's [`CommandId`]) on every
//! call that changes something: a call repeated with the same key returns
//! the first call's result and does nothing again, as real payment
//! providers do. That is what makes a command delivered twice (after a
//! crash) harmless.
//!
//! The fakes count calls and effects, and fail loudly on what must never
//! happen: charging one order twice, reserving one order twice, or any call
//! at all to a gateway a test declared unused.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use composable_rust::saga::CommandId;

use crate::domain::{Cents, LineItem};

/// Why a reservation was refused, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("{sku} is out of stock")]
    OutOfStock { sku: String },
    #[error("the inventory system is unreachable")]
    Unreachable,
}

/// Why a charge was refused, or has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("{reason}")]
    Declined { reason: String },
    /// The request went out and no answer came back: the charge may or may
    /// not have happened.
    #[error("no answer from the payment provider")]
    NoAnswer,
}

/// The inventory system.
#[async_trait]
pub trait InventoryGateway: Send + Sync + 'static {
    /// Reserves `items` for `order_id`.
    async fn reserve(
        &self,
        key: &CommandId,
        order_id: &str,
        items: &[LineItem],
    ) -> Result<(), InventoryError>;

    /// Releases what `order_id` reserved; `false` if it had nothing.
    async fn release(&self, key: &CommandId, order_id: &str) -> Result<bool, InventoryError>;
}

impl std::fmt::Debug for dyn InventoryGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn InventoryGateway")
    }
}

// ANCHOR: payment_gateway
/// The payment provider.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Charges `amount` to `customer` for `order_id`; returns the charge id.
    async fn charge(
        &self,
        key: &CommandId,
        order_id: &str,
        customer: &str,
        amount: Cents,
    ) -> Result<String, PaymentError>;

    /// Refunds the charge made for `order_id`, if there is one; returns the
    /// amount refunded (`None`: nothing was charged, nothing to do).
    async fn refund(&self, key: &CommandId, order_id: &str) -> Result<Option<Cents>, PaymentError>;
}

impl std::fmt::Debug for dyn PaymentGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn PaymentGateway")
    }
}
// ANCHOR_END: payment_gateway

/// How often a fake gateway was called, and how often it did something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InventoryStats {
    /// Every call, repeats included.
    pub calls: u32,
    pub reservations: u32,
    pub rejections: u32,
    pub releases: u32,
}

/// An inventory in memory.
#[derive(Debug)]
pub struct FakeInventory {
    book: Mutex<InventoryBook>,
    unused: Option<&'static str>,
}

#[derive(Debug, Default)]
struct InventoryBook {
    stock: BTreeMap<String, u32>,
    reserved: BTreeMap<String, Vec<LineItem>>,
    reserve_results: HashMap<CommandId, Result<(), InventoryError>>,
    release_results: HashMap<CommandId, bool>,
    unreachable: bool,
    stats: InventoryStats,
}

impl FakeInventory {
    /// An inventory holding `stock` (sku, quantity).
    pub fn with_stock<'a>(stock: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let book = InventoryBook {
            stock: stock
                .into_iter()
                .map(|(sku, quantity)| (sku.to_owned(), quantity))
                .collect(),
            ..InventoryBook::default()
        };
        Self {
            book: Mutex::new(book),
            unused: None,
        }
    }

    /// An inventory that must not be called: any call panics with `why`.
    pub fn unused(why: &'static str) -> Self {
        Self {
            book: Mutex::new(InventoryBook::default()),
            unused: Some(why),
        }
    }

    /// Makes the system unreachable (or reachable again).
    pub fn set_unreachable(&self, unreachable: bool) {
        self.lock().unreachable = unreachable;
    }

    /// What is in stock of `sku`.
    pub fn stock(&self, sku: &str) -> u32 {
        self.lock().stock.get(sku).copied().unwrap_or(0)
    }

    /// Calls and effects so far.
    pub fn stats(&self) -> InventoryStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, InventoryBook> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn called(&self, what: &str) -> MutexGuard<'_, InventoryBook> {
        if let Some(why) = self.unused {
            panic!(
                "the inventory was asked to {what}, but this test expects no inventory call: {why}"
            );
        }
        let mut book = self.lock();
        book.stats.calls += 1;
        book
    }
}

#[async_trait]
impl InventoryGateway for FakeInventory {
    async fn reserve(
        &self,
        key: &CommandId,
        order_id: &str,
        items: &[LineItem],
    ) -> Result<(), InventoryError> {
        let mut book = self.called("reserve");
        if book.unreachable {
            return Err(InventoryError::Unreachable);
        }
        if let Some(result) = book.reserve_results.get(key) {
            return result.clone();
        }
        assert!(
            !book.reserved.contains_key(order_id),
            "order {order_id} was reserved twice under different keys: a step ran twice"
        );
        let short = items
            .iter()
            .find(|item| book.stock.get(&item.sku).copied().unwrap_or(0) < item.quantity);
        let result = match short {
            Some(item) => {
                book.stats.rejections += 1;
                Err(InventoryError::OutOfStock {
                    sku: item.sku.clone(),
                })
            }
            None => {
                for item in items {
                    *book.stock.entry(item.sku.clone()).or_default() -= item.quantity;
                }
                book.reserved.insert(order_id.to_owned(), items.to_vec());
                book.stats.reservations += 1;
                Ok(())
            }
        };
        book.reserve_results.insert(key.clone(), result.clone());
        result
    }

    async fn release(&self, key: &CommandId, order_id: &str) -> Result<bool, InventoryError> {
        let mut book = self.called("release");
        if book.unreachable {
            return Err(InventoryError::Unreachable);
        }
        if let Some(released) = book.release_results.get(key) {
            return Ok(*released);
        }
        let released = match book.reserved.remove(order_id) {
            Some(items) => {
                for item in items {
                    *book.stock.entry(item.sku).or_default() += item.quantity;
                }
                book.stats.releases += 1;
                true
            }
            None => false,
        };
        book.release_results.insert(key.clone(), released);
        Ok(released)
    }
}

/// How often the fake payment provider was called, and what it did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaymentStats {
    /// Every call, repeats included.
    pub calls: u32,
    pub charges: u32,
    pub declines: u32,
    pub refunds: u32,
    /// Charged minus refunded, in cents.
    pub balance: Cents,
}

/// A payment provider in memory.
#[derive(Debug)]
pub struct FakePayment {
    book: Mutex<PaymentBook>,
    unused: Option<&'static str>,
}

#[derive(Debug, Default)]
struct PaymentBook {
    declining: BTreeSet<String>,
    silent: BTreeSet<String>,
    /// order id → (charge id, amount, refunded)
    charges: BTreeMap<String, (String, Cents, bool)>,
    charge_results: HashMap<CommandId, Result<String, PaymentError>>,
    refund_results: HashMap<CommandId, Option<Cents>>,
    stats: PaymentStats,
}

impl FakePayment {
    /// A provider that accepts every charge.
    pub fn new() -> Self {
        Self {
            book: Mutex::new(PaymentBook::default()),
            unused: None,
        }
    }

    /// A provider that must not be called: any call panics with `why`.
    pub fn unused(why: &'static str) -> Self {
        Self {
            book: Mutex::new(PaymentBook::default()),
            unused: Some(why),
        }
    }

    /// Declines every charge to `customer`.
    #[must_use]
    pub fn declining(self, customer: &str) -> Self {
        self.lock().declining.insert(customer.to_owned());
        self
    }

    /// Takes the money from `customer` but never answers the first request
    /// (the answer gets lost); the same request repeated gets the answer.
    #[must_use]
    pub fn not_answering(self, customer: &str) -> Self {
        self.lock().silent.insert(customer.to_owned());
        self
    }

    /// Calls and effects so far.
    pub fn stats(&self) -> PaymentStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, PaymentBook> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn called(&self, what: &str) -> MutexGuard<'_, PaymentBook> {
        if let Some(why) = self.unused {
            panic!(
                "the payment provider was asked to {what}, but this test expects no payment call: {why}"
            );
        }
        let mut book = self.lock();
        book.stats.calls += 1;
        book
    }
}

impl Default for FakePayment {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl PaymentGateway for FakePayment {
    async fn charge(
        &self,
        key: &CommandId,
        order_id: &str,
        customer: &str,
        amount: Cents,
    ) -> Result<String, PaymentError> {
        let mut book = self.called("charge");
        if let Some(result) = book.charge_results.get(key) {
            return result.clone();
        }
        if book.declining.contains(customer) {
            book.stats.declines += 1;
            let result = Err(PaymentError::Declined {
                reason: "insufficient funds".into(),
            });
            book.charge_results.insert(key.clone(), result.clone());
            return result;
        }
        assert!(
            !book.charges.contains_key(order_id),
            "order {order_id} was charged twice under different keys: a step ran twice"
        );
        book.stats.charges += 1;
        book.stats.balance += amount;
        let charge_id = format!("ch_{}", book.stats.charges);
        book.charges
            .insert(order_id.to_owned(), (charge_id.clone(), amount, false));
        book.charge_results
            .insert(key.clone(), Ok(charge_id.clone()));
        if book.silent.contains(customer) {
            return Err(PaymentError::NoAnswer);
        }
        Ok(charge_id)
    }

    async fn refund(&self, key: &CommandId, order_id: &str) -> Result<Option<Cents>, PaymentError> {
        let mut book = self.called("refund");
        if let Some(result) = book.refund_results.get(key) {
            return Ok(*result);
        }
        let refunded = match book.charges.get_mut(order_id) {
            Some((_, amount, refunded)) if !*refunded => {
                *refunded = true;
                Some(*amount)
            }
            _ => None,
        };
        if let Some(amount) = refunded {
            book.stats.refunds += 1;
            book.stats.balance -= amount;
        }
        book.refund_results.insert(key.clone(), refunded);
        Ok(refunded)
    }
}
