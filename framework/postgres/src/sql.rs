//! Every SQL statement the store runs at runtime, built once per store
//! from the validated, quoted schema name.
//!
//! The schema name is the only text spliced into SQL (see
//! [`schema`](crate::schema)); every value travels as a bind parameter.
//! Because each statement's text never changes for a store, sqlx prepares
//! it once per connection and reuses it.

use crate::schema::SchemaName;

/// The columns of a stored event as the store reads them, in the order
/// [`crate::rows`] decodes them. `transaction_id` is an `xid8`, which has
/// no binary decoder in sqlx: it is cast to `bigint` through its text form
/// (xid8 is a 64-bit counter that never wraps, and stays below 2^63 for
/// any realistic database lifetime; a value above that is reported as a
/// corrupt row, never wrapped).
///
/// `payload` and `metadata` are read as text and parsed by
/// [`crate::rows`], one row at a time: a row whose JSON does not decode
/// (edited by hand, or nested deeper than serde_json reads) is then
/// reported as that one corrupt event, instead of failing the whole page
/// in the driver.
macro_rules! event_columns {
    () => {
        "stream_id, event_id, stream_version, transaction_id::text::int8, sequence, event_type, \
         schema_version, payload::text, metadata::text, recorded_at"
    };
}

/// The statements of one store.
#[derive(Debug)]
pub(crate) struct Statements {
    /// Appends a batch if the stream is at the expected version.
    ///
    /// One statement, so one round trip and one transaction:
    ///
    /// - `head` reads the stream's current version (an index-only scan of
    ///   the primary key, backwards);
    /// - `inserted` inserts every event of the batch from the unnested
    ///   array parameters, numbered `head + 1, head + 2, ...`, but only if
    ///   `$2` (the expected version) is NULL (any) or equals `head`;
    /// - the final SELECT reports the version seen, how many rows were
    ///   written, and their versions and positions.
    ///
    /// 0 rows written means the expected version was wrong, and `head` is
    /// the actual version, so the failure needs no extra query. Two writers
    /// that both saw the same `head` race for the same
    /// `(stream_id, stream_version)` key: the primary key lets one commit
    /// and fails the other with a unique violation (the backstop).
    ///
    /// Parameters: `$1` stream id, `$2` expected version or NULL, `$3`
    /// event ids, `$4` types, `$5` schema versions, `$6` payloads, `$7`
    /// metadata.
    pub append: String,
    /// [`append`](Self::append) for a batch of one event at an expected
    /// version a caller supplied (`$2`, not NULL; a new stream, 0, goes through
    /// [`append_one_after`](Self::append_one_after)), with plain values
    /// instead of arrays (`$3` event id, `$4` type, `$5` schema version,
    /// `$6` payload, `$7` metadata) and without the CTEs and the summary
    /// row: it returns the row written (`stream_version`, `sequence`,
    /// transaction id), or none when the stream is not at the expected
    /// version (the caller then reads the actual version: a second query,
    /// on the conflict path only).
    ///
    /// The check looks only at versions from the expected one on
    /// (`stream_version >= $2`, the last of them): the same answer whenever
    /// the stream is at the expected version or past it (and none, so a
    /// refusal, when it is behind), from a backward index scan that stops
    /// after one entry. Without the bound PostgreSQL reads every entry of
    /// the stream on the last index page (a B-tree reads a leaf page at a
    /// time), up to a few hundred. And the row is built from the
    /// parameters, under a one-time filter, instead of from a subquery:
    /// fewer plan nodes to set up for every execution. Measured with
    /// callgrind (server instructions per append, 10 streams growing to 120
    /// events): 275,000 before either change, 216,000 after both.
    pub append_one: String,
    /// [`append_one`](Self::append_one) for `ExpectedVersion::Any` (`$2`
    /// NULL): the event goes after the stream's current version, whatever
    /// it is.
    pub append_one_any: String,
    /// One event right after version `$2`, a
    /// [`KnownVersion`](composable_rust_core::event_store::KnownVersion)
    /// (the store showed it to exist, so the stream is at `$2` or past
    /// it): a plain `INSERT ... VALUES` at `$2 + 1`, with no read of the
    /// stream's version. If the stream moved past `$2`, version `$2 + 1`
    /// is taken and the primary key refuses the row (a unique violation
    /// on [`STREAM_VERSION_KEY`]); the caller then reads the actual
    /// version, on that path only. Parameters and returned row as for
    /// [`append_one`](Self::append_one).
    ///
    /// Measured with callgrind (server instructions per one-event append
    /// from the store, 10 streams growing to 120 events; the bench-peers
    /// crate's `server-work`): 206,000 for [`append_one`](Self::append_one),
    /// 166,000 for this one (a raw `INSERT` into a lean table: 83,000).
    /// Used only with versions the stream cannot be behind: 0 (every
    /// `ExpectedVersion::NoStream` append), a
    /// [`KnownVersion`](composable_rust_core::event_store::KnownVersion),
    /// or the version of the last event a replay just read on the same
    /// connection. After a version a caller merely claims (it may be ahead
    /// of the stream) it would leave a gap, so those keep
    /// [`append_one`](Self::append_one)'s check.
    pub append_one_after: String,
    /// [`append`](Self::append) right after the known version `$2`: the
    /// batch's events at `$2 + 1, $2 + 2, ...`, with no read of the
    /// stream's version (see [`append_one_after`](Self::append_one_after));
    /// a stream that moved on fails the statement with a unique violation
    /// on [`STREAM_VERSION_KEY`]. Parameters and returned row as for
    /// [`append`](Self::append), the first column being `$2`.
    pub append_after: String,
    /// Appends to several streams at once, if each is at its expected
    /// version (`EventStore::append_to_streams`), in one statement: so one
    /// round trip and one transaction, which holds a transaction id (and
    /// so holds back readers of the global order, see
    /// [`read_all`](Self::read_all)) no longer than a single append does.
    ///
    /// - `locked` takes a transaction-scoped advisory lock for each stream
    ///   (its name prefixed with `$9`, the schema and a dot, so that
    ///   stores in other schemas do not share keys), in the order of the
    ///   keys. Two such statements over overlapping streams then wait for
    ///   each other in one order, never in a cycle: without the locks, one
    ///   inserting stream A then B and another B then A could each wait
    ///   for the other's row, a deadlock PostgreSQL breaks only after its
    ///   `deadlock_timeout` (1 s by default). The locking subquery sorts
    ///   before it calls the (volatile) lock function, and `share` reads
    ///   `locked`, so every lock is taken before any version is read or
    ///   row written;
    /// - `share` reads each stream's current version (`head`);
    /// - `inserted` writes every event, numbered on from its stream's
    ///   head, in the order given, only if every share's expected version
    ///   (`$2`, NULL for any) is its head;
    /// - the final SELECT reports, per share in the order given, its
    ///   index, head, and the rows written with their versions and
    ///   positions (none anywhere when a version was not the expected
    ///   one).
    ///
    /// The primary key on `(stream_id, stream_version)` is the backstop
    /// against a writer that committed between the read of a head and the
    /// insert, as in [`append`](Self::append).
    ///
    /// Parameters: `$1` stream ids, `$2` expected versions (one per
    /// share), `$3` each event's share (1-based), `$4` event ids, `$5`
    /// types, `$6` schema versions, `$7` payloads, `$8` metadata, `$9`
    /// the lock keys' prefix.
    pub append_streams: String,
    /// Takes the advisory locks of [`append_streams`](Self::append_streams)
    /// (`$1` stream ids, `$2` the lock keys' prefix), in the same order:
    /// the first statement of the transaction that retries a commit which
    /// lost a race, so that the commit's statement, which comes after it,
    /// reads the streams' heads in a snapshot taken once it holds them.
    pub lock_streams: String,
    /// The current version of stream `$1`.
    pub stream_version: String,
    /// Which of the ids `$1` are already stored (the duplicate id path).
    pub existing_event_ids: String,
    /// The events of stream `$1` with version `>= $2`, in version order.
    pub load_stream: String,
    /// What an aggregate load needs, in one statement: the snapshot of
    /// stream `$1` if it has one of schema version `$2` (NULL: none is
    /// wanted) at a version above 0, then the events after it (all of them
    /// without such a snapshot).
    ///
    /// Columns: `stream_version`, `event_type`, `schema_version`,
    /// `payload::text`. The snapshot's row has a NULL `event_type` and its
    /// state as `payload`. Events carry only what rebuilding state needs
    /// (no ids, positions, metadata or timestamps).
    ///
    /// There is no ORDER BY: PostgreSQL cannot merge the two branches in
    /// order, and sorting a long stream's rows (payloads included) costs
    /// more than reading them. The rows arrive in the order the plan reads
    /// them: the snapshot first, then one stream's appends, in practice in
    /// version order. [`crate::read`] hands each row over as it arrives
    /// while the versions follow on from the snapshot (1, 2, 3... or
    /// V+1, V+2...), and holds back and sorts the rest otherwise.
    pub replay: String,
    /// Up to `$3` events after position (`$1`, `$2`), in global order,
    /// plus whether committed events exist that this read could not return
    /// yet (`held_back`).
    ///
    /// # Why not simply `ORDER BY sequence`
    ///
    /// `sequence` is handed out when a row is inserted, but rows become
    /// visible when their transaction commits, and concurrent transactions
    /// commit in any order. Transaction A inserts and gets sequence 10;
    /// transaction B inserts, gets 11 and commits; a reader sees 11 and
    /// remembers "after 11"; A commits; event 10 is now visible but lies
    /// behind the reader, which never reads it. A plain sequence, or any
    /// counter assigned before commit, has this gap.
    ///
    /// # What this query does instead
    ///
    /// Positions are `(transaction_id, sequence)`, and the query returns
    /// only rows whose transaction id is below
    /// `pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction
    /// still in flight. Every transaction below that xmin has finished: it
    /// committed (its rows are visible to this very snapshot) or it
    /// aborted (it has no rows). So the set of rows below xmin is final;
    /// nothing can ever appear there again. A transaction still running
    /// has an id at or above xmin, so its rows, whenever they commit, sort
    /// after everything returned now. A reader that remembers the last
    /// position it read therefore never skips an event; it only waits
    /// while an older transaction is still open.
    ///
    /// # Held back
    ///
    /// Transaction ids are server-wide, so any open *writing* transaction
    /// on the server (in any schema or database) holds the horizon back,
    /// for as long as it stays open. Events committed after it started
    /// are then visible but not yet readable. The query reports that in
    /// the same snapshot (`held_commit`, `held_sequence`: the position of
    /// the last committed event, when it is held back; NULL otherwise),
    /// because a later snapshot could no longer tell: [`crate::read`]
    /// waits briefly for the horizon to pass that position (not for
    /// events committed after the read began: under a steady stream of
    /// writes, some transaction is always in flight) and otherwise
    /// schedules a wake-up for subscribers, since the transaction holding
    /// the horizon may end without any NOTIFY (it may abort, or write
    /// elsewhere).
    ///
    /// The probe looks at one row only, the last visible one in position
    /// order (a backward probe of the `(transaction_id, sequence)` index):
    /// each of its two conditions, once true for a row, is true for every
    /// later row, so some row meets both exactly when the last one does.
    /// (A plain EXISTS over the range let the planner pick a sequential
    /// scan of the whole table: it cannot know the horizon, expects many
    /// matches, and during a catch-up finds none.) The page is a range scan
    /// of the same index.
    pub read_all: String,
    /// The position of the last committed event, if it lies after position
    /// (`$1`, `$2`): asked by a [`COPY` page](crate::copy_read) that came
    /// back short, to learn whether events it could not return yet exist
    /// (held back, or committed since), and up to where. One backward
    /// probe of the position index, as in [`read_all`](Self::read_all).
    pub last_after: String,
    /// How many committed events lie after position (`$1`, `$2`).
    pub count_after: String,
    /// The largest transaction id stored (NULL when there are no events)
    /// and the next transaction id the server will assign: the `xmax` of
    /// the current snapshot, "one past the highest completed transaction
    /// id". Every event the store wrote on this server has a smaller
    /// transaction id; a stored one at or above it was copied from another
    /// server (see [`PostgresError::TransactionIdsAhead`](crate::PostgresError::TransactionIdsAhead)).
    /// The `max()` is one backward probe of the position index, and the
    /// snapshot's `xmax` assigns no transaction id.
    pub transaction_ids: String,
    /// Stores or replaces the snapshot of a stream.
    pub save_snapshot: String,
    /// The snapshot of stream `$1`.
    pub load_snapshot: String,
    /// The events table, quoted: for [`read_all_copy`](Self::read_all_copy).
    events: String,
}

impl Statements {
    /// Builds the statements for `schema`.
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        let events = format!("{s}.events");
        let snapshots = format!("{s}.snapshots");
        Self {
            append: format!(
                "WITH head AS ( \
                     SELECT COALESCE(MAX(stream_version), 0) AS version \
                     FROM {events} WHERE stream_id = $1 \
                 ), inserted AS ( \
                     INSERT INTO {events} \
                         (event_id, stream_id, stream_version, event_type, schema_version, \
                          payload, metadata) \
                     SELECT e.event_id, $1, head.version + e.ord, e.event_type, \
                            e.schema_version, e.payload, e.metadata \
                     FROM head, \
                          unnest($3::uuid[], $4::text[], $5::int4[], $6::jsonb[], $7::jsonb[]) \
                          WITH ORDINALITY \
                          AS e(event_id, event_type, schema_version, payload, metadata, ord) \
                     WHERE $2::int8 IS NULL OR head.version = $2::int8 \
                     ORDER BY e.ord \
                     RETURNING stream_version, transaction_id, sequence \
                 ) \
                 SELECT (SELECT version FROM head), count(*), max(stream_version), \
                        min(sequence), max(sequence), max(transaction_id::text::int8) \
                 FROM inserted"
            ),
            append_one: format!(
                "INSERT INTO {events} \
                     (event_id, stream_id, stream_version, event_type, schema_version, \
                      payload, metadata) \
                 SELECT $3::uuid, $1, $2::int8 + 1, $4::text, $5::int4, $6::jsonb, $7::jsonb \
                 WHERE COALESCE(( \
                     SELECT stream_version FROM {events} \
                     WHERE stream_id = $1 AND stream_version >= $2::int8 \
                     ORDER BY stream_version DESC LIMIT 1 \
                 ), 0) = $2::int8 \
                 RETURNING stream_version, sequence, transaction_id::text::int8"
            ),
            append_one_any: format!(
                "INSERT INTO {events} \
                     (event_id, stream_id, stream_version, event_type, schema_version, \
                      payload, metadata) \
                 SELECT $3::uuid, $1, head.version + 1, $4::text, $5::int4, $6::jsonb, \
                        $7::jsonb \
                 FROM ( \
                     SELECT COALESCE(MAX(stream_version), 0) AS version \
                     FROM {events} WHERE stream_id = $1 \
                 ) AS head \
                 WHERE $2::int8 IS NULL \
                 RETURNING stream_version, sequence, transaction_id::text::int8"
            ),
            append_one_after: format!(
                "INSERT INTO {events} \
                     (event_id, stream_id, stream_version, event_type, schema_version, \
                      payload, metadata) \
                 VALUES ($3::uuid, $1, $2::int8 + 1, $4::text, $5::int4, $6::jsonb, $7::jsonb) \
                 RETURNING stream_version, sequence, transaction_id::text::int8"
            ),
            append_after: format!(
                "WITH inserted AS ( \
                     INSERT INTO {events} \
                         (event_id, stream_id, stream_version, event_type, schema_version, \
                          payload, metadata) \
                     SELECT e.event_id, $1, $2::int8 + e.ord, e.event_type, \
                            e.schema_version, e.payload, e.metadata \
                     FROM unnest($3::uuid[], $4::text[], $5::int4[], $6::jsonb[], $7::jsonb[]) \
                          WITH ORDINALITY \
                          AS e(event_id, event_type, schema_version, payload, metadata, ord) \
                     ORDER BY e.ord \
                     RETURNING stream_version, transaction_id, sequence \
                 ) \
                 SELECT $2::int8, count(*), max(stream_version), \
                        min(sequence), max(sequence), max(transaction_id::text::int8) \
                 FROM inserted"
            ),
            lock_streams: stream_locks("$1", "$2"),
            append_streams: format!(
                "WITH locked AS MATERIALIZED ({locks}), share AS MATERIALIZED ( \
                     SELECT s.idx, s.stream_id, s.expected, COALESCE(( \
                         SELECT MAX(stream_version) FROM {events} \
                         WHERE stream_id = s.stream_id \
                     ), 0) AS head \
                     FROM locked, \
                          unnest($1::text[], $2::int8[]) WITH ORDINALITY \
                          AS s(stream_id, expected, idx) \
                 ), inserted AS ( \
                     INSERT INTO {events} \
                         (event_id, stream_id, stream_version, event_type, schema_version, \
                          payload, metadata) \
                     SELECT e.event_id, share.stream_id, \
                            share.head + row_number() OVER (PARTITION BY e.share ORDER BY e.ord), \
                            e.event_type, e.schema_version, e.payload, e.metadata \
                     FROM unnest($3::int8[], $4::uuid[], $5::text[], $6::int4[], $7::jsonb[], \
                                 $8::jsonb[]) WITH ORDINALITY \
                          AS e(share, event_id, event_type, schema_version, payload, metadata, ord) \
                     JOIN share ON share.idx = e.share \
                     WHERE (SELECT bool_and(expected IS NULL OR expected = head) FROM share) \
                     ORDER BY e.ord \
                     RETURNING stream_id, stream_version, transaction_id, sequence \
                 ) \
                 SELECT share.idx, share.head, count(inserted.sequence), \
                        max(inserted.stream_version), min(inserted.sequence), \
                        max(inserted.sequence), max(inserted.transaction_id::text::int8) \
                 FROM share LEFT JOIN inserted ON inserted.stream_id = share.stream_id \
                 GROUP BY share.idx, share.head \
                 ORDER BY share.idx",
                locks = stream_locks("$1", "$9"),
            ),
            stream_version: format!(
                "SELECT COALESCE(MAX(stream_version), 0) FROM {events} WHERE stream_id = $1"
            ),
            existing_event_ids: format!(
                "SELECT event_id FROM {events} WHERE event_id = ANY($1::uuid[])"
            ),
            load_stream: format!(
                "SELECT {columns} FROM {events} \
                 WHERE stream_id = $1 AND stream_version >= $2 \
                 ORDER BY stream_version",
                columns = event_columns!()
            ),
            replay: format!(
                "SELECT stream_version, NULL::text AS event_type, schema_version, \
                        state::text AS payload \
                 FROM {snapshots} \
                 WHERE stream_id = $1 AND schema_version = $2::int4 AND stream_version > 0 \
                 UNION ALL \
                 SELECT stream_version, event_type, schema_version, payload::text \
                 FROM {events} \
                 WHERE stream_id = $1 AND stream_version > COALESCE( \
                     (SELECT stream_version FROM {snapshots} \
                      WHERE stream_id = $1 AND schema_version = $2::int4 \
                        AND stream_version > 0), 0)"
            ),
            read_all: format!(
                "SELECT h.held_commit, h.held_sequence, e.stream_id, e.event_id, \
                        e.stream_version, e.transaction_id::text::int8, e.sequence, \
                        e.event_type, e.schema_version, e.payload::text, e.metadata::text, \
                        e.recorded_at \
                 FROM (SELECT 1) AS one \
                 LEFT JOIN LATERAL ( \
                     {last_after} \
                       AND last.transaction_id >= pg_snapshot_xmin(pg_current_snapshot()) \
                 ) AS h ON true \
                 LEFT JOIN LATERAL ({page}) AS e ON true \
                 ORDER BY e.transaction_id, e.sequence",
                last_after = last_after(&events),
                page = page(&events, "*", "$1::int8::text::xid8", "$2::int8", "$3"),
            ),
            last_after: last_after(&events),
            count_after: format!(
                "SELECT count(*) FROM {events} \
                 WHERE (transaction_id, sequence) > ($1::int8::text::xid8, $2::int8)"
            ),
            transaction_ids: format!(
                "SELECT (SELECT max(transaction_id) FROM {events})::text::int8, \
                        pg_snapshot_xmax(pg_current_snapshot())::text::int8"
            ),
            save_snapshot: format!(
                "INSERT INTO {snapshots} \
                     (stream_id, stream_version, schema_version, state, taken_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (stream_id) DO UPDATE SET \
                     stream_version = EXCLUDED.stream_version, \
                     schema_version = EXCLUDED.schema_version, \
                     state = EXCLUDED.state, \
                     taken_at = EXCLUDED.taken_at"
            ),
            load_snapshot: format!(
                "SELECT stream_version, schema_version, state, taken_at \
                 FROM {snapshots} WHERE stream_id = $1"
            ),
            events,
        }
    }

    /// The page of [`read_all`](Self::read_all) (without its `held_back`
    /// column) as a binary `COPY` to the client: up to `limit` events after
    /// position (`commit`, `sequence`), in the native types
    /// [`copy_read`](crate::copy_read) decodes. `COPY` takes no bind
    /// parameters, so the three integers are spliced in; nothing else is.
    pub(crate) fn read_all_copy(&self, commit: i64, sequence: i64, limit: usize) -> String {
        // A limit above what a `bigint` holds means "all", as that does.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let page = page(
            &self.events,
            "stream_id, event_id, stream_version, transaction_id, sequence, event_type, \
             schema_version, payload, metadata, recorded_at",
            &format!("'{commit}'::xid8"),
            &format!("{sequence}::int8"),
            &limit.to_string(),
        );
        format!("COPY ({page}) TO STDOUT (FORMAT binary)")
    }
}

/// The constraint that makes `(stream_id, stream_version)` unique.
pub(crate) const STREAM_VERSION_KEY: &str = "events_stream_version_key";
/// The constraint that makes `event_id` unique.
pub(crate) const EVENT_ID_KEY: &str = "events_event_id_key";

/// Takes an advisory lock per distinct stream of the `text[]` parameter
/// `streams`, keyed by the hash of `prefix` and the stream id, in key
/// order (so that two writers over overlapping streams take turns instead
/// of deadlocking); one row, the number of locks.
fn stream_locks(streams: &str, prefix: &str) -> String {
    format!(
        "SELECT count(*) AS streams FROM ( \
             SELECT pg_advisory_xact_lock(key) FROM ( \
                 SELECT DISTINCT hashtextextended({prefix} || stream, 0) AS key \
                 FROM unnest({streams}::text[]) AS stream \
             ) AS keys ORDER BY key \
         ) AS locks"
    )
}

/// The probe of [`Statements::read_all`] and [`Statements::last_after`]:
/// the position (`held_commit`, `held_sequence`) of the last event of
/// `events` in position order, if it lies after position (`$1`, `$2`) (one
/// backward probe of the position index).
fn last_after(events: &str) -> String {
    format!(
        "SELECT last.transaction_id::text::int8 AS held_commit, \
                last.sequence AS held_sequence \
         FROM ( \
             SELECT transaction_id, sequence FROM {events} \
             ORDER BY transaction_id DESC, sequence DESC \
             LIMIT 1 \
         ) AS last \
         WHERE (last.transaction_id, last.sequence) > ($1::int8::text::xid8, $2::int8)"
    )
}

/// A page of `read_all`, on either read path: `columns` of up to `limit`
/// events of `events` after position (`commit`, `sequence`), below the
/// horizon, in position order (a range scan of the position index). The
/// bounds are SQL: bind parameters for the statement, integer literals
/// for `COPY`.
fn page(events: &str, columns: &str, commit: &str, sequence: &str, limit: &str) -> String {
    format!(
        "SELECT {columns} FROM {events} \
         WHERE (transaction_id, sequence) > ({commit}, {sequence}) \
           AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY transaction_id, sequence \
         LIMIT {limit}"
    )
}
