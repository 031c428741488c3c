//! The `Product` aggregate: one product (sku) and its stock in every
//! warehouse, event-sourced in the stream `product-{sku}`.
//!
//! Why one aggregate per sku, holding every warehouse: the rules that must
//! never break ("never reserve more than is available", "one open purchase
//! order per sku and warehouse") are checked against one consistent state,
//! and a product's registration (its reorder point) is right there. Two
//! commands on the same sku serialise through optimistic concurrency; a
//! retailer with very hot skus could split the stream per warehouse, at the
//! price of copying the reorder settings into each.
//!
//! The numbers, per warehouse:
//!
//! ```text
//! on hand    what is physically on the shelves
//! reserved   promised to orders, not shipped yet
//! available  on hand - reserved: what can still be promised
//! ```
//!
//! Besides the event a command asks for, a decision may add **follow-up**
//! events computed from the stock it leaves: `LowStock` when available
//! drops below the reorder point (an alert opens), `StockRestored` when it
//! is back (the alert resolves), `ReorderRequested` when it is low and no
//! purchase order is open. They are decided here, in the same append, so a
//! crash can never leave low stock without its alert or its reorder.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use composable_rust::chrono::{DateTime, Utc};
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

use crate::errors::Rejection;

/// The stream of the product `sku`: `product-{sku}`.
pub fn product_stream(sku: &str) -> Result<StreamId, composable_rust::EventStoreError> {
    StreamId::for_aggregate(Product::KIND, sku)
}

/// Why a reservation was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// The order was cancelled.
    Cancelled,
    /// Nobody committed it before its time-to-live ran out.
    Expired,
}

impl std::fmt::Display for ReleaseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cancelled => "released",
            Self::Expired => "expired",
        })
    }
}

/// What can happen to a product. Fat events: each carries the sku and the
/// warehouse, so the sagas and read models never look anything up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum ProductEvent {
    /// The product exists, with its reorder settings.
    #[serde(rename = "inventory.product_registered")]
    Registered {
        sku: String,
        name: String,
        reorder_point: u32,
        reorder_quantity: u32,
    },
    /// Goods arrived in a warehouse, against a purchase order or not.
    #[serde(rename = "inventory.stock_received")]
    StockReceived {
        sku: String,
        warehouse: String,
        quantity: u32,
        purchase_order: Option<String>,
    },
    /// Stock promised to an order until `expires_at`.
    #[serde(rename = "inventory.stock_reserved")]
    Reserved {
        sku: String,
        warehouse: String,
        reservation_id: String,
        order_id: String,
        quantity: u32,
        expires_at: DateTime<Utc>,
    },
    /// A reservation given back (cancelled, or expired).
    #[serde(rename = "inventory.reservation_released")]
    Released {
        sku: String,
        warehouse: String,
        reservation_id: String,
        quantity: u32,
        reason: ReleaseReason,
    },
    /// A reservation shipped: it leaves the shelves.
    #[serde(rename = "inventory.reservation_committed")]
    Committed {
        sku: String,
        warehouse: String,
        reservation_id: String,
        order_id: String,
        quantity: u32,
    },
    /// Available dropped below the reorder point: alert number `alert` of
    /// this sku and warehouse opens.
    #[serde(rename = "inventory.low_stock")]
    LowStock {
        sku: String,
        warehouse: String,
        alert: u32,
        available: u32,
        reorder_point: u32,
    },
    /// Available is back at or above the reorder point: alert `alert`
    /// resolves.
    #[serde(rename = "inventory.stock_restored")]
    StockRestored {
        sku: String,
        warehouse: String,
        alert: u32,
        available: u32,
    },
    /// Stock is low and nothing is on order: purchase order
    /// `purchase_order` should be raised (the replenishment saga does).
    #[serde(rename = "inventory.reorder_requested")]
    ReorderRequested {
        sku: String,
        warehouse: String,
        purchase_order: String,
        quantity: u32,
    },
    /// The supplier accepted purchase order `purchase_order`.
    #[serde(rename = "inventory.purchase_order_placed")]
    PurchaseOrderPlaced {
        sku: String,
        warehouse: String,
        purchase_order: String,
        supplier_reference: String,
    },
}

/// What a product can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductCommand {
    /// Registers the product.
    Register {
        sku: String,
        name: String,
        reorder_point: u32,
        reorder_quantity: u32,
    },
    /// Books goods into a warehouse (with the purchase order they answer,
    /// if any).
    Receive {
        warehouse: String,
        quantity: u32,
        purchase_order: Option<String>,
    },
    /// Reserves stock for an order for `ttl`.
    Reserve {
        reservation_id: String,
        order_id: String,
        warehouse: String,
        quantity: u32,
        ttl: Duration,
    },
    /// Gives a reservation back.
    Release {
        reservation_id: String,
        reason: ReleaseReason,
    },
    /// Ships a reservation.
    Commit { reservation_id: String },
    /// Records that the supplier accepted a purchase order.
    RecordPurchaseOrder {
        warehouse: String,
        purchase_order: String,
        supplier_reference: String,
    },
}

/// An open reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub order_id: String,
    pub warehouse: String,
    pub quantity: u32,
}

/// A purchase order raised and not yet received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenPurchaseOrder {
    pub number: String,
    pub quantity: u32,
    /// The supplier's reference, once it accepted the order.
    pub supplier_reference: Option<String>,
}

/// One warehouse's stock of the product.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseStock {
    pub on_hand: u32,
    pub reserved: u32,
    /// The low-stock alert open right now, if any.
    pub open_alert: Option<u32>,
    /// How many alerts were ever raised (numbers the next one).
    pub alerts_raised: u32,
    /// The purchase order open right now, if any: at most one.
    pub open_purchase_order: Option<OpenPurchaseOrder>,
    /// How many purchase orders were ever raised (numbers the next one).
    pub purchase_orders_raised: u32,
}

impl WarehouseStock {
    /// On hand minus reserved. Never negative: `reserved <= on_hand` is
    /// kept by every decision (see the property test).
    pub fn available(&self) -> u32 {
        self.on_hand.saturating_sub(self.reserved)
    }
}

/// What the product knows: only what its rules need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub sku: Option<String>,
    pub name: String,
    pub reorder_point: u32,
    pub reorder_quantity: u32,
    pub stock: BTreeMap<String, WarehouseStock>,
    pub reservations: BTreeMap<String, Reservation>,
    /// Reservations released or committed: a repeated release (an expiry
    /// after the order shipped, a retried cancel) is then a no-op instead
    /// of an error, and a commit after an expiry is refused with the reason.
    pub closed: BTreeMap<String, Closed>,
    /// Purchase orders already received: a delivery note booked twice
    /// must not count the goods twice.
    pub received_purchase_orders: Vec<String>,
}

/// How a reservation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Closed {
    Released(ReleaseReason),
    Committed,
}

/// The aggregate's environment: the clock a reservation's expiry is
/// computed on (the system clock in production, a test clock in tests).
pub type ProductEnvironment = Arc<dyn Clock>;

/// Checks an identifier that ends up in stream ids, saga ids and read
/// model keys (where `@` and `#` separate parts).
pub fn check_identifier(what: &'static str, value: &str) -> Result<(), Rejection> {
    let valid = !value.is_empty()
        && value.len() <= 40
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Rejection::InvalidIdentifier {
            what,
            value: value.to_owned(),
        })
    }
}

fn positive(what: &'static str, value: u32) -> Result<(), Rejection> {
    if value == 0 {
        Err(Rejection::InvalidQuantity { what })
    } else {
        Ok(())
    }
}

impl Product {
    /// The sku, or the rejection for a product never registered. A product
    /// that does not exist cannot know the sku it was asked for: the
    /// service, which does, fills it in (`Inventory::execute`).
    fn registered_sku(&self) -> Result<String, Rejection> {
        self.sku
            .clone()
            .ok_or(Rejection::UnknownProduct { sku: String::new() })
    }

    /// The stock of `warehouse` (empty if nothing was ever received there).
    pub fn warehouse(&self, warehouse: &str) -> WarehouseStock {
        self.stock.get(warehouse).cloned().unwrap_or_default()
    }

    /// The follow-up events of `events` for `warehouse`: the alert opening
    /// or resolving, and a reorder, judged on the stock the events leave.
    fn with_follow_ups(&self, warehouse: &str, mut events: Vec<ProductEvent>) -> Vec<ProductEvent> {
        let mut after = self.clone();
        for event in &events {
            after.apply(event);
        }
        let sku = after.sku.clone().unwrap_or_default();
        let stock = after.warehouse(warehouse);
        let available = stock.available();
        let low = available < after.reorder_point;
        match (low, stock.open_alert) {
            (true, None) => events.push(ProductEvent::LowStock {
                sku: sku.clone(),
                warehouse: warehouse.to_owned(),
                alert: stock.alerts_raised + 1,
                available,
                reorder_point: after.reorder_point,
            }),
            (false, Some(alert)) => events.push(ProductEvent::StockRestored {
                sku: sku.clone(),
                warehouse: warehouse.to_owned(),
                alert,
                available,
            }),
            _ => {}
        }
        if low && stock.open_purchase_order.is_none() {
            // Order enough to get back above the reorder point, and at
            // least the product's reorder quantity.
            let shortfall = after.reorder_point - available;
            events.push(ProductEvent::ReorderRequested {
                purchase_order: format!(
                    "PO-{sku}-{warehouse}-{}",
                    stock.purchase_orders_raised + 1
                ),
                sku,
                warehouse: warehouse.to_owned(),
                quantity: after.reorder_quantity.max(shortfall),
            });
        }
        events
    }
}

impl Aggregate for Product {
    const KIND: &'static str = "product";
    type Event = ProductEvent;
    type Command = ProductCommand;
    type Error = Rejection;
    type Environment = ProductEnvironment;

    fn decide(
        &self,
        command: ProductCommand,
        clock: &ProductEnvironment,
    ) -> Result<Vec<ProductEvent>, Rejection> {
        match command {
            ProductCommand::Register {
                sku,
                name,
                reorder_point,
                reorder_quantity,
            } => {
                check_identifier("sku", &sku)?;
                positive("reorder quantity", reorder_quantity)?;
                if self.sku.is_some() {
                    return Err(Rejection::AlreadyRegistered { sku });
                }
                Ok(vec![ProductEvent::Registered {
                    sku,
                    name,
                    reorder_point,
                    reorder_quantity,
                }])
            }
            ProductCommand::Receive {
                warehouse,
                quantity,
                purchase_order,
            } => {
                check_identifier("warehouse", &warehouse)?;
                let sku = self.registered_sku()?;
                positive("quantity", quantity)?;
                if let Some(number) = &purchase_order {
                    // A delivery note booked again: the goods were counted.
                    if self.received_purchase_orders.contains(number) {
                        return Ok(vec![]);
                    }
                    let open = self.warehouse(&warehouse).open_purchase_order;
                    if open.is_none_or(|open| &open.number != number) {
                        return Err(Rejection::UnknownPurchaseOrder {
                            sku,
                            warehouse,
                            purchase_order: number.clone(),
                        });
                    }
                }
                let received = ProductEvent::StockReceived {
                    sku,
                    warehouse: warehouse.clone(),
                    quantity,
                    purchase_order,
                };
                Ok(self.with_follow_ups(&warehouse, vec![received]))
            }
            ProductCommand::Reserve {
                reservation_id,
                order_id,
                warehouse,
                quantity,
                ttl,
            } => {
                check_identifier("reservation id", &reservation_id)?;
                check_identifier("order id", &order_id)?;
                check_identifier("warehouse", &warehouse)?;
                let sku = self.registered_sku()?;
                positive("quantity", quantity)?;
                if ttl.is_zero() {
                    return Err(Rejection::InvalidQuantity {
                        what: "reservation time-to-live",
                    });
                }
                let wanted = Reservation {
                    order_id: order_id.clone(),
                    warehouse: warehouse.clone(),
                    quantity,
                };
                // The same reservation asked again (a retried request):
                // it exists, nothing to do. Different details: refused.
                if let Some(existing) = self.reservations.get(&reservation_id) {
                    return if *existing == wanted {
                        Ok(vec![])
                    } else {
                        Err(Rejection::ReservationConflict {
                            sku,
                            reservation_id,
                        })
                    };
                }
                if self.closed.contains_key(&reservation_id) {
                    return Err(Rejection::ReservationConflict {
                        sku,
                        reservation_id,
                    });
                }
                let available = self.warehouse(&warehouse).available();
                if quantity > available {
                    return Err(Rejection::InsufficientStock {
                        sku,
                        warehouse,
                        available,
                        requested: quantity,
                    });
                }
                let ttl = composable_rust::chrono::Duration::from_std(ttl).map_err(|_| {
                    Rejection::InvalidQuantity {
                        what: "reservation time-to-live (at most a few centuries)",
                    }
                })?;
                let reserved = ProductEvent::Reserved {
                    sku,
                    warehouse: warehouse.clone(),
                    reservation_id,
                    order_id,
                    quantity,
                    expires_at: clock.now() + ttl,
                };
                Ok(self.with_follow_ups(&warehouse, vec![reserved]))
            }
            ProductCommand::Release {
                reservation_id,
                reason,
            } => {
                let sku = self.registered_sku()?;
                let Some(reservation) = self.reservations.get(&reservation_id) else {
                    // Released or shipped already: releasing again changes
                    // nothing (an expiry racing a commit is harmless).
                    if self.closed.contains_key(&reservation_id) {
                        return Ok(vec![]);
                    }
                    return Err(Rejection::UnknownReservation {
                        sku,
                        reservation_id,
                    });
                };
                let warehouse = reservation.warehouse.clone();
                let released = ProductEvent::Released {
                    sku,
                    warehouse: warehouse.clone(),
                    reservation_id,
                    quantity: reservation.quantity,
                    reason,
                };
                Ok(self.with_follow_ups(&warehouse, vec![released]))
            }
            ProductCommand::Commit { reservation_id } => {
                let sku = self.registered_sku()?;
                let Some(reservation) = self.reservations.get(&reservation_id) else {
                    return match self.closed.get(&reservation_id) {
                        // Shipped already: a retried commit.
                        Some(Closed::Committed) => Ok(vec![]),
                        Some(Closed::Released(reason)) => Err(Rejection::ReservationClosed {
                            sku,
                            reservation_id,
                            how: reason.to_string(),
                        }),
                        None => Err(Rejection::UnknownReservation {
                            sku,
                            reservation_id,
                        }),
                    };
                };
                let warehouse = reservation.warehouse.clone();
                let committed = ProductEvent::Committed {
                    sku,
                    warehouse: warehouse.clone(),
                    reservation_id,
                    order_id: reservation.order_id.clone(),
                    quantity: reservation.quantity,
                };
                // Available does not change (on hand and reserved both
                // drop), but judging it keeps the rule in one place.
                Ok(self.with_follow_ups(&warehouse, vec![committed]))
            }
            ProductCommand::RecordPurchaseOrder {
                warehouse,
                purchase_order,
                supplier_reference,
            } => {
                let sku = self.registered_sku()?;
                // Received already (the goods came before the saga's
                // command did): nothing left to record.
                if self.received_purchase_orders.contains(&purchase_order) {
                    return Ok(vec![]);
                }
                let open = self.warehouse(&warehouse).open_purchase_order;
                let Some(open) = open.filter(|open| open.number == purchase_order) else {
                    return Err(Rejection::UnknownPurchaseOrder {
                        sku,
                        warehouse,
                        purchase_order,
                    });
                };
                // Recorded once, however often the saga's command arrives.
                if open.supplier_reference.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![ProductEvent::PurchaseOrderPlaced {
                    sku,
                    warehouse,
                    purchase_order,
                    supplier_reference,
                }])
            }
        }
    }

    fn apply(&mut self, event: &ProductEvent) {
        match event {
            ProductEvent::Registered {
                sku,
                name,
                reorder_point,
                reorder_quantity,
            } => {
                self.sku = Some(sku.clone());
                self.name = name.clone();
                self.reorder_point = *reorder_point;
                self.reorder_quantity = *reorder_quantity;
            }
            ProductEvent::StockReceived {
                warehouse,
                quantity,
                purchase_order,
                ..
            } => {
                let stock = self.stock.entry(warehouse.clone()).or_default();
                stock.on_hand += quantity;
                if let Some(number) = purchase_order {
                    stock.open_purchase_order = None;
                    self.received_purchase_orders.push(number.clone());
                }
            }
            ProductEvent::Reserved {
                warehouse,
                reservation_id,
                order_id,
                quantity,
                ..
            } => {
                self.stock.entry(warehouse.clone()).or_default().reserved += quantity;
                self.reservations.insert(
                    reservation_id.clone(),
                    Reservation {
                        order_id: order_id.clone(),
                        warehouse: warehouse.clone(),
                        quantity: *quantity,
                    },
                );
            }
            ProductEvent::Released {
                warehouse,
                reservation_id,
                quantity,
                reason,
                ..
            } => {
                let stock = self.stock.entry(warehouse.clone()).or_default();
                stock.reserved = stock.reserved.saturating_sub(*quantity);
                self.reservations.remove(reservation_id);
                self.closed
                    .insert(reservation_id.clone(), Closed::Released(*reason));
            }
            ProductEvent::Committed {
                warehouse,
                reservation_id,
                quantity,
                ..
            } => {
                let stock = self.stock.entry(warehouse.clone()).or_default();
                stock.reserved = stock.reserved.saturating_sub(*quantity);
                stock.on_hand = stock.on_hand.saturating_sub(*quantity);
                self.reservations.remove(reservation_id);
                self.closed
                    .insert(reservation_id.clone(), Closed::Committed);
            }
            ProductEvent::LowStock {
                warehouse, alert, ..
            } => {
                let stock = self.stock.entry(warehouse.clone()).or_default();
                stock.open_alert = Some(*alert);
                stock.alerts_raised = *alert;
            }
            ProductEvent::StockRestored { warehouse, .. } => {
                self.stock.entry(warehouse.clone()).or_default().open_alert = None;
            }
            ProductEvent::ReorderRequested {
                warehouse,
                purchase_order,
                quantity,
                ..
            } => {
                let stock = self.stock.entry(warehouse.clone()).or_default();
                stock.open_purchase_order = Some(OpenPurchaseOrder {
                    number: purchase_order.clone(),
                    quantity: *quantity,
                    supplier_reference: None,
                });
                stock.purchase_orders_raised += 1;
            }
            ProductEvent::PurchaseOrderPlaced {
                warehouse,
                supplier_reference,
                ..
            } => {
                let stock = self.stock.entry(warehouse.clone()).or_default();
                if let Some(open) = &mut stock.open_purchase_order {
                    open.supplier_reference = Some(supplier_reference.clone());
                }
            }
        }
    }
}
