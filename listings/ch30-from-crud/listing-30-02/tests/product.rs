//! The product's rules, given / when / then, without a database.

use catalog::product::{Product, ProductCommand, ProductError, ProductEvent};
use composable_rust::prelude::*;

fn imported() -> ProductEvent {
    ProductEvent::Imported {
        name: "Kettle".into(),
        price_cents: 4500,
    }
}

fn update(name: &str, price_cents: i64) -> ProductCommand {
    ProductCommand::Update {
        name: name.into(),
        price_cents,
    }
}

// ANCHOR: tests
#[test]
fn an_imported_product_is_live_like_a_created_one() {
    let product = AggregateTest::<Product>::new(())
        .given([imported()])
        .when(update("Kettle", 3900))
        .then_events([ProductEvent::Repriced { price_cents: 3900 }]);
    assert_eq!(product.name, "Kettle");
}

#[test]
fn an_update_records_only_what_changed() {
    AggregateTest::<Product>::new(())
        .given([imported()])
        .when(update("Kettle", 4500))
        .then_events([]);
    AggregateTest::<Product>::new(())
        .given([imported()])
        .when(update("Gooseneck kettle", 5200))
        .then_events([
            ProductEvent::Renamed {
                name: "Gooseneck kettle".into(),
            },
            ProductEvent::Repriced { price_cents: 5200 },
        ]);
}

#[test]
fn the_tables_rules_hold_and_ids_are_never_reused() {
    AggregateTest::<Product>::new(())
        .given([imported()])
        .when(update("Kettle", -1))
        .then_rejected(ProductError::NegativePrice(-1));
    AggregateTest::<Product>::new(())
        .given([imported(), ProductEvent::Deleted])
        .when(ProductCommand::Create {
            name: "Kettle".into(),
            price_cents: 4500,
        })
        .then_rejected(ProductError::AlreadyExists);
    AggregateTest::<Product>::new(())
        .given([imported(), ProductEvent::Deleted])
        .when(ProductCommand::Delete)
        .then_rejected(ProductError::NotFound);
    AggregateTest::<Product>::new(())
        .when(update("Kettle", 4500))
        .then_rejected(ProductError::NotFound);
}
// ANCHOR_END: tests
