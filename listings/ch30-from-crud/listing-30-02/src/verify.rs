//! Both sides compared: every product's state rebuilt from its events
//! against its row in the legacy table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use composable_rust::postgres::PostgresEventStore;
use composable_rust::prelude::*;
use composable_rust::{AggregateRepository, Position};
use legacy_catalog::Catalog;

use crate::MigrationError;
use crate::product::{Product, Status, legacy_id, product_stream};

/// The outcome of [`compare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub rows: usize,
    pub streams: usize,
    pub deleted: usize,
    /// One line per product on which the sides disagree.
    pub differences: Vec<String>,
}

impl Comparison {
    pub fn agree(&self) -> bool {
        self.differences.is_empty()
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rows, {} product streams ({} deleted): ",
            self.rows, self.streams, self.deleted
        )?;
        if self.agree() {
            return write!(f, "both sides agree");
        }
        write!(f, "{} differences", self.differences.len())?;
        for difference in &self.differences {
            write!(f, "\n  {difference}")?;
        }
        Ok(())
    }
}

// ANCHOR: compare
/// Compares every product stream with the legacy table. A live product
/// must have a row with the same name and price, a deleted one no row,
/// and every row a stream.
pub async fn compare(
    legacy: &Catalog,
    events: &PostgresEventStore,
) -> Result<Comparison, MigrationError> {
    // The ids of every product stream, from the global stream.
    let mut ids = BTreeSet::new();
    let mut after = Position::START;
    loop {
        let page = events.read_all(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        ids.extend(page.iter().filter_map(|event| legacy_id(&event.stream_id)));
    }
    let streams = ids.len();
    let rows: BTreeMap<i64, _> = legacy
        .list()
        .await?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    ids.extend(rows.keys().copied());

    let products = AggregateRepository::<Product, _>::new(events.clone(), ());
    let (mut deleted, mut differences) = (0, Vec::new());
    for id in ids {
        let state = products.load(&product_stream(id)?).await?.state;
        match (rows.get(&id), state.status) {
            (Some(_), Status::New) => {
                differences.push(format!("product {id}: a row but no stream (not imported)"))
            }
            (Some(row), Status::Live)
                if row.name == state.name && row.price_cents == state.price_cents => {}
            (Some(row), Status::Live) => differences.push(format!(
                "product {id}: the row says {:?} at {}, the events {:?} at {}",
                row.name, row.price_cents, state.name, state.price_cents
            )),
            (Some(_), Status::Deleted) => {
                differences.push(format!("product {id}: deleted, but its row is still there"))
            }
            (None, Status::Deleted) => deleted += 1,
            (None, _) => differences.push(format!("product {id}: live, but it has no row")),
        }
    }
    Ok(Comparison {
        rows: rows.len(),
        streams,
        deleted,
        differences,
    })
}
// ANCHOR_END: compare
