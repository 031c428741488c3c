-- The projection store's tables. PostgresProjectionStore::migrate() runs
-- this file on a connection whose search_path is the store's schema, so
-- every name here is unqualified and lands in that schema.
--
-- Versions: the event store's migrations (migrations/*.sql) use 1 to 9999,
-- the projection store's (migrations/projections/*.sql) 10001 to 19999, so
-- both can share a schema and its _sqlx_migrations table.

-- Read models kept as key -> bytes (ProjectionTx::save/get/delete).
--
-- The key uses the "C" collation (byte order, which for UTF-8 is code-point
-- order), so "every key starting with a prefix" is the index range
-- [prefix, successor(prefix)): delete_prefix and scan_prefix walk the
-- primary key instead of scanning the table, and no LIKE pattern (with its
-- % _ \ escaping) is ever built.
CREATE TABLE projection_data (
    key        text COLLATE "C" PRIMARY KEY,
    data       bytea       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Where each projection got to: the position of the last event it applied,
-- written in the same transaction as the read-model changes of the batch.
CREATE TABLE projection_checkpoints (
    projection      text        PRIMARY KEY,
    commit_position bigint      NOT NULL CHECK (commit_position >= 0),
    sequence        bigint      NOT NULL CHECK (sequence >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Events a projection gave up on, complete (the whole StoredEvent as JSON),
-- so they can be inspected, retried after a fix, or discarded.
-- `recorded` orders them oldest first; recording a letter again moves it
-- to the end.
CREATE TABLE projection_dead_letters (
    projection text        NOT NULL,
    event_id   uuid        NOT NULL,
    event      jsonb       NOT NULL,
    error      text        NOT NULL,
    attempts   bigint      NOT NULL CHECK (attempts >= 0),
    failed_at  timestamptz NOT NULL,
    recorded   bigint      GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (projection, event_id)
);

CREATE INDEX projection_dead_letters_order_idx
    ON projection_dead_letters (projection, recorded);
