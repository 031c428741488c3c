//! The catalog as it was before the migration: one `products` table, and
//! the code that creates, reads, updates and deletes its rows. Every change
//! overwrites the row; how a product got to its current price is lost.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

// ANCHOR: table
/// The table, as the old application created it.
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS products (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0)
)";

/// One row of `products`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
}
// ANCHOR_END: table

/// A pool whose connections find `products` in `schema` (the connection's
/// `search_path`), so the SQL below names the table as the old code did.
pub async fn connect(url: &str, schema: &str) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    let options = options.options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
}

// ANCHOR: crud
/// The old application's data access: create, read, update, delete.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: PgPool,
}

impl Catalog {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates the table if it does not exist.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        sqlx::query(CREATE_TABLE).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn create(&self, name: &str, price_cents: i64) -> Result<Product, sqlx::Error> {
        sqlx::query_as(
            "INSERT INTO products (name, price_cents) VALUES ($1, $2) \
             RETURNING id, name, price_cents",
        )
        .bind(name)
        .bind(price_cents)
        .fetch_one(&self.pool)
        .await
    }

    pub async fn get(&self, id: i64) -> Result<Option<Product>, sqlx::Error> {
        sqlx::query_as("SELECT id, name, price_cents FROM products WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn list(&self) -> Result<Vec<Product>, sqlx::Error> {
        sqlx::query_as("SELECT id, name, price_cents FROM products ORDER BY id")
            .fetch_all(&self.pool)
            .await
    }

    /// Overwrites the row; `None` if there is no such product.
    pub async fn update(
        &self,
        id: i64,
        name: &str,
        price_cents: i64,
    ) -> Result<Option<Product>, sqlx::Error> {
        sqlx::query_as(
            "UPDATE products SET name = $2, price_cents = $3 WHERE id = $1 \
             RETURNING id, name, price_cents",
        )
        .bind(id)
        .bind(name)
        .bind(price_cents)
        .fetch_optional(&self.pool)
        .await
    }

    /// Deletes the row; `false` if there was none.
    pub async fn delete(&self, id: i64) -> Result<bool, sqlx::Error> {
        let deleted = sqlx::query("DELETE FROM products WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }
}
// ANCHOR_END: crud
