//! Runs the guide's workload as the book does (seed, commands, rebuild,
//! clean), in smoke mode, on a schema of its own, and checks what it
//! reports: the snapshotted ledger's loads replay only the events after
//! its snapshot, the other's replay the whole stream.

use std::process::Command;

use composable_rust_testing::fixtures::TestSchema;

fn run(schema: &TestSchema, step: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_listing-32-01"))
        .arg(step)
        .env("DATABASE_URL", schema.url())
        .env("PERF_GUIDE_SCHEMA", schema.name())
        .env("COMPOSABLE_BENCH_SMOKE", "1")
        .output()
        .expect("the listing's binary starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`listing-32-01 {step}` failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_snapshot_shortens_every_load_and_the_rebuild_sees_every_event() {
    let schema = TestSchema::new();
    // Smoke mode: long ledgers of 200 events, 50 short ledgers of 8.
    let seeded = run(&schema, "seed");
    assert!(
        seeded.contains("seeded ") && seeded.contains(": 800 events"),
        "{seeded}"
    );

    // 10 commands on each long ledger.
    let timed = run(&schema, "commands");
    assert!(timed.contains("a load now replays 210 events"), "{timed}");
    assert!(timed.contains("a load now replays 10 events"), "{timed}");
    assert!(timed.contains("faster with the snapshot"), "{timed}");

    let rebuilt = run(&schema, "rebuild");
    assert!(rebuilt.contains("rebuilt 820 events"), "{rebuilt}");
    assert!(rebuilt.contains("projection.batch"), "{rebuilt}");

    let cleaned = run(&schema, "clean");
    assert!(cleaned.contains("dropped schema"), "{cleaned}");
}
