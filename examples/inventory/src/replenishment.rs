//! The replenishment saga: low stock → purchase order placed with the
//! supplier → goods received → done.
//!
//! ```text
//! ReorderRequested ─► PlacePurchaseOrder ─► PurchaseOrderPlaced ─► StockReceived (same PO) ─► done
//! ```
//!
//! One instance per purchase order number (`PO-{sku}-{warehouse}-{n}`).
//! Idempotent at three levels:
//!
//! 1. the `Product` aggregate requests a reorder only when no purchase
//!    order is open for that sku and warehouse: one open order at a time;
//! 2. the runtime recognises a redelivered event by its id and ignores it
//!    (`Handled::Duplicate`);
//! 3. the command carries the purchase order number, which the supplier
//!    takes as its idempotency key: a command delivered twice orders once.
//!
//! The saga keeps everything it needs (sku, warehouse, quantity) from the
//! fat `ReorderRequested` event; it never reads the stock read model.

use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::{Reaction, Routed, SagaContext, SagaError, SagaId};
use serde::{Deserialize, Serialize};

use crate::product::ProductEvent;

/// The saga.
#[derive(Debug, Clone, Default)]
pub struct ReplenishmentSaga;

/// What the saga reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplenishmentInput {
    Requested {
        sku: String,
        warehouse: String,
        quantity: u32,
    },
    Placed {
        supplier_reference: String,
    },
    Received {
        quantity: u32,
    },
}

/// What the saga records about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum ReplenishmentEvent {
    #[serde(rename = "replenishment.started")]
    Started {
        purchase_order: String,
        sku: String,
        warehouse: String,
        quantity: u32,
    },
    #[serde(rename = "replenishment.ordered")]
    Ordered { supplier_reference: String },
    #[serde(rename = "replenishment.received")]
    Received { quantity: u32 },
}

/// What the saga asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplenishmentCommand {
    /// Order `quantity` of `sku` for `warehouse` from the supplier, under
    /// the number `purchase_order`, and record the supplier's answer.
    PlacePurchaseOrder {
        purchase_order: String,
        sku: String,
        warehouse: String,
        quantity: u32,
    },
}

/// Where a replenishment stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stage {
    #[default]
    NotStarted,
    Ordering,
    Ordered,
    Received,
}

/// Everything the saga knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplenishmentState {
    pub stage: Stage,
    pub purchase_order: String,
    pub supplier_reference: Option<String>,
}

impl Saga for ReplenishmentSaga {
    const KIND: &'static str = "replenishment";
    type State = ReplenishmentState;
    type Input = ReplenishmentInput;
    type Event = ReplenishmentEvent;
    type Command = ReplenishmentCommand;

    /// The purchase order number is the saga's id.
    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<ReplenishmentInput>>, SagaError> {
        if !event.stream_id.as_str().starts_with("product-") {
            return Ok(None);
        }
        let (purchase_order, input) = match decode::<ProductEvent>(event, &Upcasters::new())? {
            Some(ProductEvent::ReorderRequested {
                sku,
                warehouse,
                purchase_order,
                quantity,
            }) => (
                purchase_order,
                ReplenishmentInput::Requested {
                    sku,
                    warehouse,
                    quantity,
                },
            ),
            Some(ProductEvent::PurchaseOrderPlaced {
                purchase_order,
                supplier_reference,
                ..
            }) => (
                purchase_order,
                ReplenishmentInput::Placed { supplier_reference },
            ),
            Some(ProductEvent::StockReceived {
                purchase_order: Some(purchase_order),
                quantity,
                ..
            }) => (purchase_order, ReplenishmentInput::Received { quantity }),
            _ => return Ok(None),
        };
        Ok(Some(Routed::new(SagaId::new(purchase_order)?, input)))
    }

    fn react(
        &self,
        state: &ReplenishmentState,
        input: ReplenishmentInput,
        ctx: &SagaContext,
    ) -> Reaction<Self> {
        use ReplenishmentInput::*;
        match (state.stage, input) {
            (
                Stage::NotStarted,
                Requested {
                    sku,
                    warehouse,
                    quantity,
                },
            ) => {
                let purchase_order = ctx.saga_id.as_str().to_owned();
                Reaction::new()
                    .record(ReplenishmentEvent::Started {
                        purchase_order: purchase_order.clone(),
                        sku: sku.clone(),
                        warehouse: warehouse.clone(),
                        quantity,
                    })
                    .send(ReplenishmentCommand::PlacePurchaseOrder {
                        purchase_order,
                        sku,
                        warehouse,
                        quantity,
                    })
            }
            (Stage::Ordering, Placed { supplier_reference }) => {
                Reaction::new().record(ReplenishmentEvent::Ordered { supplier_reference })
            }
            // Goods may even arrive before the supplier's confirmation was
            // recorded: either way the order is fulfilled.
            (Stage::Ordering | Stage::Ordered, Received { quantity }) => Reaction::new()
                .record(ReplenishmentEvent::Received { quantity })
                .complete(),
            _ => Reaction::new(),
        }
    }

    fn apply(state: &mut ReplenishmentState, event: &ReplenishmentEvent) {
        match event {
            ReplenishmentEvent::Started { purchase_order, .. } => {
                state.purchase_order = purchase_order.clone();
                state.stage = Stage::Ordering;
            }
            ReplenishmentEvent::Ordered { supplier_reference } => {
                state.supplier_reference = Some(supplier_reference.clone());
                state.stage = Stage::Ordered;
            }
            ReplenishmentEvent::Received { .. } => state.stage = Stage::Received,
        }
    }
}
