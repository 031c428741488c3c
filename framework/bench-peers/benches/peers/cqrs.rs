//! cqrs-es 0.5 with postgres-es 0.5, used as their documentation shows:
//! `CqrsFramework::execute` over a `PersistedEventStore` of a
//! `PostgresEventRepository`, on the tables of postgres-es's `db/init.sql`
//! (in their own schema).

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{CqrsFramework, DomainEvent, EventStore};
use postgres_es::PostgresEventRepository;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{Executor, PgPool};

use crate::domain::{Ledger, LedgerEvent, LedgerFull, Post};

impl DomainEvent for LedgerEvent {
    fn event_type(&self) -> String {
        "Posted".to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// The ledger as a cqrs-es aggregate.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CqrsLedger(pub Ledger);

impl cqrs_es::Aggregate for CqrsLedger {
    const TYPE: &'static str = "ledger";
    type Command = Post;
    type Event = LedgerEvent;
    type Error = LedgerFull;
    type Services = ();

    async fn handle(
        &mut self,
        post: Post,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), LedgerFull> {
        for event in self.0.decide(post.first, post.count)? {
            // cqrs-es 0.5's sink applies each event to the aggregate as it
            // is written.
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: LedgerEvent) {
        self.0.apply(&event);
    }
}

type Store = PersistedEventStore<PostgresEventRepository, CqrsLedger>;

pub struct Cqrs {
    pool: PgPool,
    schema: String,
    framework: CqrsFramework<CqrsLedger, Store>,
    /// A second store on the same tables, for `load_aggregate`.
    loader: Store,
}

impl Cqrs {
    pub async fn new(pool: PgPool, schema: &str) -> Self {
        // postgres-es 0.5's db/init.sql, in this schema.
        pool.execute(
            format!(
                "CREATE SCHEMA {schema}; \
                 CREATE TABLE {schema}.events ( \
                     aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
                     sequence bigint CHECK (sequence >= 0) NOT NULL, \
                     event_type text NOT NULL, event_version text NOT NULL, \
                     payload json NOT NULL, metadata json NOT NULL, \
                     PRIMARY KEY (aggregate_type, aggregate_id, sequence)); \
                 CREATE TABLE {schema}.snapshots ( \
                     aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
                     last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, \
                     current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, \
                     payload json NOT NULL, \
                     PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))"
            )
            .as_str(),
        )
        .await
        .expect("cqrs-es tables");
        let store = |pool: &PgPool| PersistedEventStore::new_event_store(repository(pool, schema));
        Self {
            framework: CqrsFramework::new(store(&pool), vec![], ()),
            loader: store(&pool),
            pool,
            schema: schema.to_owned(),
        }
    }

    pub async fn command(&self, id: &str, post: Post) {
        self.framework
            .execute(id, post)
            .await
            .expect("cqrs-es command");
    }

    pub async fn load(&self, id: &str) -> (Ledger, u64) {
        let context = self.loader.load_aggregate(id).await.expect("cqrs-es load");
        (context.aggregate.0, context.current_sequence as u64)
    }

    /// A full replay of the stored rows.
    pub async fn replay(&self, id: &str) -> Ledger {
        replay(&self.pool, &self.schema, id).await
    }

    /// Runs `commands` on a new aggregate through a snapshot store
    /// (`new_snapshot_store(repo, 100)`, what `postgres_snapshot_cqrs`
    /// builds), then returns (state loaded through that store, full replay).
    pub async fn snapshot_check(&self, id: &str, commands: &[Post]) -> (Ledger, Ledger) {
        let snapshots = || {
            PersistedEventStore::<_, CqrsLedger>::new_snapshot_store(
                repository(&self.pool, &self.schema),
                100,
            )
        };
        let framework = CqrsFramework::new(snapshots(), vec![], ());
        for post in commands {
            framework
                .execute(id, *post)
                .await
                .expect("snapshot command");
        }
        let loaded = snapshots()
            .load_aggregate(id)
            .await
            .expect("load")
            .aggregate
            .0;
        (loaded, self.replay(id).await)
    }
}

fn repository(pool: &PgPool, schema: &str) -> PostgresEventRepository {
    PostgresEventRepository::new(pool.clone())
        .with_tables(&format!("{schema}.events"), &format!("{schema}.snapshots"))
}

async fn replay(pool: &PgPool, schema: &str, id: &str) -> Ledger {
    let events: Vec<Json<LedgerEvent>> = sqlx::query_scalar(&format!(
        "SELECT payload FROM {schema}.events WHERE aggregate_type = 'ledger' \
         AND aggregate_id = $1 ORDER BY sequence"
    ))
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("replay");
    Ledger::replay(events.iter().map(|Json(event)| event))
}
