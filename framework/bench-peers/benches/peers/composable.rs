//! Composable Rust: `AggregateRepository::execute` and `load` over a
//! `PostgresEventStore` in its own schema (migrated as the book shows).

use composable_rust_core::{Aggregate, AggregateRepository, Event, StreamId};
use composable_rust_postgres::PostgresEventStore;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::domain::{Ledger, LedgerEvent, LedgerFull, Post};

impl Event for LedgerEvent {}

/// The ledger as a Composable Rust aggregate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CrLedger(pub Ledger);

impl Aggregate for CrLedger {
    const KIND: &'static str = "ledger";
    type Event = LedgerEvent;
    type Command = Post;
    type Error = LedgerFull;
    type Environment = ();

    fn decide(&self, post: Post, _: &()) -> Result<Vec<LedgerEvent>, LedgerFull> {
        self.0.decide(post.first, post.count)
    }

    fn apply(&mut self, event: &LedgerEvent) {
        self.0.apply(event);
    }
}

pub struct Composable {
    pool: PgPool,
    schema: String,
    repository: AggregateRepository<CrLedger, PostgresEventStore>,
    hot: bool,
}

impl Composable {
    /// A repository on its own schema; with a hot-aggregate cache of
    /// `hot` entries when `hot` is not 0.
    pub async fn new(pool: PgPool, schema: &str, hot: usize) -> Self {
        let store = PostgresEventStore::new(pool.clone())
            .with_schema(schema)
            .expect("schema name");
        store.migrate().await.expect("migrations");
        Self {
            repository: AggregateRepository::new(store, ()).with_hot_aggregates(hot),
            pool,
            schema: schema.to_owned(),
            hot: hot > 0,
        }
    }

    pub fn is_hot(&self) -> bool {
        self.hot
    }

    fn stream(id: &str) -> StreamId {
        StreamId::for_aggregate(CrLedger::KIND, id).expect("stream id")
    }

    pub async fn command(&self, id: &str, post: Post) {
        self.repository
            .execute(&Self::stream(id), post)
            .await
            .expect("composable command");
    }

    pub async fn load(&self, id: &str) -> (Ledger, u64) {
        let loaded = self
            .repository
            .load(&Self::stream(id))
            .await
            .expect("composable load");
        (loaded.state.0, loaded.version)
    }

    /// A full replay of the stored rows (type and payload put back into
    /// the serde enum by hand).
    pub async fn replay(&self, id: &str) -> Ledger {
        let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(&format!(
            "SELECT event_type, payload FROM \"{}\".events WHERE stream_id = $1 \
             ORDER BY stream_version",
            self.schema
        ))
        .bind(Self::stream(id).as_str())
        .fetch_all(&self.pool)
        .await
        .expect("replay");
        let events: Vec<LedgerEvent> = rows
            .into_iter()
            .map(|(kind, payload)| {
                serde_json::from_value(serde_json::json!({ kind: payload })).expect("event")
            })
            .collect();
        Ledger::replay(&events)
    }
}
