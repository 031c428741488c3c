-- The lease tables of partitioned workers. PartitionLeases::migrate() runs
-- this file on a connection whose search_path is the projection store's
-- schema, so every name here is unqualified and lands in that schema: the
-- lease must be checked in the same transaction as the read model's writes
-- (fencing), so it lives in the same database.
--
-- Versions: the event store uses 1 to 9999, the projection store 10001 to
-- 19999, the partition leases 20001 to 29999; the three migrators ignore
-- each other's versions and can share a schema's _sqlx_migrations table.

-- How many partitions a piece of work (a projection, a saga kind) has: the
-- first worker records it, every later one must use the same count.
CREATE TABLE partition_sets (
    work       text    PRIMARY KEY,
    partitions integer NOT NULL CHECK (partitions BETWEEN 1 AND 1024)
);

-- One row per partition, created with its set. `owner` holds the lease
-- until `expires_at` (renewed by the owner's heartbeat); `token` grows by
-- one every time the partition changes hands, and a unit of work commits
-- only if the token it started with is still the row's (fencing): a worker
-- that lost its lease can never commit.
CREATE TABLE partition_leases (
    work       text        NOT NULL,
    partition  integer     NOT NULL CHECK (partition >= 0),
    owner      text,
    token      bigint      NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL DEFAULT 'epoch',
    PRIMARY KEY (work, partition)
);

-- The workers that heartbeat: live ones (seen within a lease duration)
-- share the partitions fairly.
CREATE TABLE partition_workers (
    work    text        NOT NULL,
    worker  text        NOT NULL,
    seen_at timestamptz NOT NULL,
    PRIMARY KEY (work, worker)
);
