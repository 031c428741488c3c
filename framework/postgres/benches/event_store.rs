//! Benchmark of PostgresEventStore against raw SQL (being written).

fn main() {}
