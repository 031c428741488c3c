//! The codes of the operations commands, `CR-E0301` to `CR-E0349`
//! (scaffolding owns `CR-E0351` to `CR-E0399`). Each is explained in the
//! book's troubleshooting appendix.

composable_rust_core::error_codes! {
    /// No database URL was given.
    MISSING_DATABASE_URL = ("CR-E0301", "no PostgreSQL URL for the operations commands");
    /// The schema does not exist in the database.
    SCHEMA_NOT_FOUND = ("CR-E0302", "the schema does not exist");
    /// The schema exists but holds no event store.
    NO_EVENT_TABLES = ("CR-E0303", "the schema holds no event store tables");
    /// The schema holds no projection store.
    NO_PROJECTION_TABLES = ("CR-E0304", "the schema holds no projection store tables");
    /// No Redis URL was given for a Redis projection store.
    MISSING_REDIS_URL = ("CR-E0305", "no Redis URL for a Redis projection store");
    /// The stream has no events.
    STREAM_NOT_FOUND = ("CR-E0306", "the stream has no events");
    /// The projection has no dead letter for that event.
    DEAD_LETTER_NOT_FOUND = ("CR-E0307", "no such dead letter");
    /// No projection of that name has a checkpoint in the store.
    UNKNOWN_PROJECTION = ("CR-E0308", "no such projection in the store");
    /// A position given on the command line is not `commit/sequence`.
    INVALID_POSITION = ("CR-E0309", "invalid position");
    /// Writing the output or starting the runtime failed.
    IO = ("CR-E0310", "the command could not write its output");
    /// The projection store was migrated by a release without requests.
    NO_REQUEST_TABLE = ("CR-E0311", "the projection store has no requests table yet");
    /// `--base` names no blue/green read model (no registry).
    NO_BLUE_GREEN_REGISTRY = ("CR-E0312", "no blue/green registry in the base schema");
    /// `rebuilds status --watch` gave up before the rebuild ended.
    WATCH_TIMED_OUT = ("CR-E0313", "the rebuild was still running when --timeout ran out");
}
