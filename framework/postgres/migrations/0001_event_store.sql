-- The event store's tables. migrate() runs this file on a connection whose
-- search_path is the store's schema, so every name here is unqualified and
-- lands in that schema.

-- One row per event.
--
-- A position in the global order is (transaction_id, sequence):
--   transaction_id: the id of the transaction that wrote the row (xid8, 64
--                   bits, never wraps around);
--   sequence:       unique, increasing in the order rows were inserted.
-- Readers only read rows whose transaction id is below the oldest
-- transaction still in flight, so a row that commits later always sorts
-- after every row already read (see read_all in src/sql.rs).
CREATE TABLE events (
    sequence       bigserial   NOT NULL,
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL,
    stream_version bigint      NOT NULL CHECK (stream_version > 0),
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL CHECK (schema_version >= 0),
    payload        jsonb       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    -- Optimistic concurrency's backstop: two writers racing for the same
    -- version cannot both commit.
    CONSTRAINT events_stream_version_key PRIMARY KEY (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

-- read_all walks this index.
CREATE UNIQUE INDEX events_position_idx ON events (transaction_id, sequence);

-- The latest snapshot of each stream.
CREATE TABLE snapshots (
    stream_id      text        PRIMARY KEY,
    stream_version bigint      NOT NULL CHECK (stream_version >= 0),
    schema_version integer     NOT NULL CHECK (schema_version >= 0),
    state          jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL
);

-- Wake followers: every INSERT statement into events sends one NOTIFY on
-- the channel "<schema>_events", delivered when (and only if) its
-- transaction commits. PostgreSQL folds identical notifications of one
-- transaction into one, and a statement-level trigger fires once per
-- statement, so a batch costs one notification. Rows inserted by any
-- writer, not only by PostgresEventStore, wake followers.
CREATE FUNCTION notify_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    FOR EACH STATEMENT
    EXECUTE FUNCTION notify_events();
