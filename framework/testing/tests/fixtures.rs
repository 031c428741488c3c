//! The fixtures clean up after themselves, inside and outside a runtime.
//! They need the services (`DATABASE_URL`, `REDIS_URL`) and the crate's
//! `postgres` and `redis` features (`cargo test --workspace` turns both
//! on; so does `cargo test -p composable-rust-testing --all-features`).

#[cfg(feature = "postgres")]
mod postgres {
    use composable_rust_testing::fixtures::{TestDatabase, TestSchema};
    use composable_rust_testing::services::database_url;
    use sqlx::PgPool;

    async fn schema_exists(pool: &PgPool, name: &str) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(name)
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_schema_is_created_on_demand_and_dropped_with_its_tables_when_dropped() {
        let pool = PgPool::connect(&database_url()).await.unwrap();
        let schema = TestSchema::new();
        let name = schema.name().to_owned();
        assert!(name.starts_with("cr_test_") && name.len() == 40, "{name}");
        assert_eq!(schema.quoted(), format!("\"{name}\""));
        assert!(!schema_exists(&pool, &name).await, "nothing is created yet");

        schema.create().await.unwrap();
        schema.create().await.unwrap(); // idempotent
        sqlx::query(&format!("CREATE TABLE {}.t (id int)", schema.quoted()))
            .execute(&pool)
            .await
            .unwrap();
        assert!(schema_exists(&pool, &name).await);

        // Dropped inside this (current-thread) runtime: no panic, no hang.
        drop(schema);
        assert!(!schema_exists(&pool, &name).await, "dropped with CASCADE");
    }

    #[tokio::test]
    async fn drop_now_drops_it_from_async_code() {
        let pool = PgPool::connect(&database_url()).await.unwrap();
        let schema = TestSchema::new();
        schema.create().await.unwrap();
        schema.drop_now().await.unwrap();
        assert!(!schema_exists(&pool, schema.name()).await);
        schema.drop_now().await.unwrap(); // nothing left: still fine
    }

    #[tokio::test]
    async fn a_transaction_left_open_in_the_schema_makes_the_drop_fail_not_hang() {
        let pool = PgPool::connect(&database_url()).await.unwrap();
        let schema = TestSchema::new();
        schema.create().await.unwrap();
        sqlx::query(&format!("CREATE TABLE {}.t (id int)", schema.quoted()))
            .execute(&pool)
            .await
            .unwrap();
        // What a store outliving its guard does: a transaction holding a
        // lock on a table of the schema.
        let mut open = pool.begin().await.unwrap();
        sqlx::query(&format!("LOCK TABLE {}.t", schema.quoted()))
            .execute(&mut *open)
            .await
            .unwrap();

        let started = std::time::Instant::now();
        let error = schema.drop_now().await.unwrap_err().to_string();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        assert!(error.contains("declare the guard before them"), "{error}");

        open.rollback().await.unwrap();
        schema.drop_now().await.unwrap();
        assert!(!schema_exists(&pool, schema.name()).await);
    }

    #[test]
    fn a_schema_dropped_outside_any_runtime_is_dropped_too() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let schema = TestSchema::new();
        runtime.block_on(schema.create()).unwrap();
        let name = schema.name().to_owned();
        drop(schema);
        let exists = runtime.block_on(async {
            let pool = PgPool::connect(&database_url()).await.unwrap();
            schema_exists(&pool, &name).await
        });
        assert!(!exists);
    }

    #[tokio::test]
    async fn two_schemas_never_share_a_name() {
        let (a, b) = (TestSchema::new(), TestSchema::new());
        assert_ne!(a.name(), b.name());
    }

    #[tokio::test]
    async fn a_test_database_is_created_and_dropped_even_with_open_connections() {
        let database = TestDatabase::new().await;
        let name = database.name().to_owned();
        let pool = database.pool().await;
        let current: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(current, name);
        drop(database); // WITH (FORCE): the pool's connection does not block it
        let admin = PgPool::connect(&database_url()).await.unwrap();
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&admin)
                .await
                .unwrap();
        assert!(!exists);
    }
}

#[cfg(feature = "redis")]
mod redis {
    use composable_rust_testing::fixtures::TestKeyPrefix;
    use redis::Commands;

    fn set(prefix: &TestKeyPrefix, suffix: &str) {
        let mut connection = redis::Client::open(prefix.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let key = format!("{{{prefix}}}:{suffix}");
        let _: () = connection.set(key, 1).unwrap();
    }

    #[test]
    fn a_prefixs_keys_are_deleted_when_it_is_dropped_and_a_child_keeps_its_own() {
        let prefix = TestKeyPrefix::new();
        assert!(prefix.as_str().starts_with("cr-test:"), "{prefix}");
        assert_eq!(prefix.pattern(), format!("{{{prefix}}}:*"));
        let child = prefix.child("data");
        assert_eq!(child.as_str(), format!("{prefix}:data"));
        set(&prefix, "a");
        set(&prefix, "b");
        set(&child, "a");
        assert_eq!(
            prefix.keys().unwrap().len(),
            2,
            "the child's keys are not ours"
        );

        let probe = TestKeyPrefix::from_url(prefix.url());
        let (ours, theirs) = (prefix.pattern(), child.pattern());
        drop(prefix);
        let mut connection = redis::Client::open(probe.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let left: Vec<String> = connection
            .scan_match::<_, String>(&ours)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(child.keys().unwrap().len(), 1);
        drop(child);
        let left: Vec<String> = connection
            .scan_match::<_, String>(&theirs)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn clear_deletes_the_keys_from_async_code() {
        let prefix = TestKeyPrefix::new();
        for n in 0..3 {
            set(&prefix, &n.to_string());
        }
        assert_eq!(prefix.clear().await.unwrap(), 3);
        assert!(prefix.keys().unwrap().is_empty());
        assert_eq!(prefix.delete_keys().unwrap(), 0);
    }

    #[test]
    #[should_panic(expected = "not a safe key prefix segment")]
    fn a_child_segment_with_a_glob_or_brace_is_refused() {
        let _ = TestKeyPrefix::from_url("redis://127.0.0.1:6379").child("{x}*");
    }
}
