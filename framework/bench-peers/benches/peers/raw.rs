//! Lean raw sqlx: a table of (stream_id, version, payload) with only its
//! primary key; a command selects the stream's payloads (decoded straight
//! into the event type), folds them, decides, and inserts the new rows in
//! one statement, the primary key catching a concurrent writer.

use std::collections::HashMap;

use sqlx::types::Json;
use sqlx::{Executor, PgPool};

use crate::domain::{Ledger, LedgerEvent, Post};

pub struct Raw {
    pool: PgPool,
    select: String,
    insert_one: String,
    insert_many: String,
    /// For the "cached state" contender: state and version per stream, so a
    /// command is only the INSERT (the raw reference of hot aggregates).
    cached: Option<HashMap<String, (Ledger, i64)>>,
}

impl Raw {
    pub async fn new(pool: PgPool, schema: &str, cached: bool) -> Self {
        pool.execute(
            format!(
                "CREATE SCHEMA {schema}; \
                 CREATE TABLE {schema}.events (stream_id text NOT NULL, version bigint NOT NULL, \
                 payload jsonb NOT NULL, PRIMARY KEY (stream_id, version))"
            )
            .as_str(),
        )
        .await
        .expect("raw tables");
        Self {
            pool,
            select: format!(
                "SELECT payload FROM {schema}.events WHERE stream_id = $1 ORDER BY version"
            ),
            insert_one: format!(
                "INSERT INTO {schema}.events (stream_id, version, payload) VALUES ($1, $2, $3)"
            ),
            insert_many: format!(
                "INSERT INTO {schema}.events (stream_id, version, payload) \
                 SELECT $1, $2 + t.ord, t.payload \
                 FROM unnest($3::jsonb[]) WITH ORDINALITY AS t(payload, ord)"
            ),
            cached: cached.then(HashMap::new),
        }
    }

    pub fn is_cached(&self) -> bool {
        self.cached.is_some()
    }

    pub async fn load(&self, stream: &str) -> (Ledger, u64) {
        let events: Vec<Json<LedgerEvent>> = sqlx::query_scalar(&self.select)
            .bind(stream)
            .fetch_all(&self.pool)
            .await
            .expect("raw select");
        let mut ledger = Ledger::default();
        for Json(event) in &events {
            ledger.apply(event);
        }
        (ledger, events.len() as u64)
    }

    pub async fn command(&mut self, stream: &str, post: Post) {
        let (mut ledger, version) = match self.cached.as_ref().and_then(|c| c.get(stream)) {
            Some(&(ledger, version)) => (ledger, version),
            None => {
                let (ledger, version) = self.load(stream).await;
                (ledger, version as i64)
            }
        };
        let events = ledger.decide(post.first, post.count).expect("decide");
        if let [event] = events.as_slice() {
            sqlx::query(&self.insert_one)
                .bind(stream)
                .bind(version + 1)
                .bind(Json(event))
                .execute(&self.pool)
                .await
                .expect("raw insert");
        } else {
            let payloads: Vec<Json<&LedgerEvent>> = events.iter().map(Json).collect();
            sqlx::query(&self.insert_many)
                .bind(stream)
                .bind(version)
                .bind(payloads)
                .execute(&self.pool)
                .await
                .expect("raw insert");
        }
        if let Some(cache) = self.cached.as_mut() {
            for event in &events {
                ledger.apply(event);
            }
            cache.insert(stream.to_owned(), (ledger, version + events.len() as i64));
        }
    }

    /// A full replay of the stored rows.
    pub async fn replay(&self, stream: &str) -> Ledger {
        self.load(stream).await.0
    }
}
