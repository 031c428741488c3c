//! The event-shape lock: the checked-in recordings of `ParcelEvent` under
//! `tests/event-shapes/ParcelEvent/` hold, and each way of breaking the
//! lock is reported with what to do.

use std::path::{Path, PathBuf};

use composable_rust_core::{Event, Upcasters};
use composable_rust_testing::shape_lock::EventShapeLock;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Today's parcel events. `Sent` is at version 2: version 1 had
/// `weight_kg` (a float) where version 2 has `grams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum ParcelEvent {
    Sent { to: String, grams: u32 },
    Delivered,
}

impl Event for ParcelEvent {
    fn schema_version(event_type: &str) -> u32 {
        if event_type == "Sent" { 2 } else { 1 }
    }

    fn event_types() -> &'static [&'static str] {
        &["Sent", "Delivered"]
    }
}

fn upcasters() -> Upcasters {
    Upcasters::new().migrate("Sent", 1, |mut payload| {
        let kg = payload["weight_kg"]
            .as_f64()
            .ok_or("`weight_kg` must be a number")?;
        payload["grams"] = json!((kg * 1000.0).round() as u32);
        Ok(payload)
    })
}

fn samples() -> [ParcelEvent; 2] {
    [
        ParcelEvent::Sent {
            to: "Ada".into(),
            grams: 1500,
        },
        ParcelEvent::Delivered,
    ]
}

fn lock<E: Event>() -> EventShapeLock<E> {
    EventShapeLock::<E>::new(env!("CARGO_MANIFEST_DIR")).with_recording(false)
}

#[test]
fn the_recorded_shapes_hold() {
    lock::<ParcelEvent>()
        .with_upcasters(upcasters())
        .with_samples(samples())
        .check();
}

#[test]
fn recordings_live_in_one_folder_per_enum() {
    let lock = lock::<ParcelEvent>();
    assert!(lock.folder().ends_with("tests/event-shapes/ParcelEvent"));
    assert!(lock.folder().join("Sent.v1.json").is_file());
}

/// `Sent` with `grams` renamed, still claiming version 2.
mod renamed {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) enum ParcelEvent {
        Sent { to: String, weight_grams: u32 },
        Delivered,
    }

    impl Event for ParcelEvent {
        fn schema_version(event_type: &str) -> u32 {
            if event_type == "Sent" { 2 } else { 1 }
        }
    }
}

#[test]
fn a_shape_change_without_a_version_bump_is_refused_even_when_recording() {
    let report = lock::<renamed::ParcelEvent>()
        .with_recording(true)
        .with_upcasters(upcasters())
        .with_samples([
            renamed::ParcelEvent::Sent {
                to: "Ada".into(),
                weight_grams: 1500,
            },
            renamed::ParcelEvent::Delivered,
        ])
        .verify();
    let problems = report.problems().join("\n");
    assert!(
        problems.contains("the shape of `Sent` changed without a version bump")
            && problems.contains("`payload.grams` is gone")
            && problems.contains("`payload.weight_grams` is new")
            && problems
                .contains("return 3 (#[event(version = 3)]) and register an upcaster from v2"),
        "{problems}"
    );
    // The recordings no longer decode into the renamed type either.
    assert!(problems.contains("no longer loads"), "{problems}");
    assert!(report.recorded().is_empty(), "nothing may be written");
}

/// `Sent` with a new optional field: old payloads still load.
mod widened {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) enum ParcelEvent {
        Sent {
            to: String,
            grams: u32,
            #[serde(default)]
            fragile: bool,
        },
        Delivered,
    }

    impl Event for ParcelEvent {
        fn schema_version(event_type: &str) -> u32 {
            if event_type == "Sent" { 2 } else { 1 }
        }
    }
}

#[test]
fn a_compatible_change_is_told_to_keep_the_old_payload_as_history() {
    let report = lock::<widened::ParcelEvent>()
        .with_upcasters(upcasters())
        .with_samples([
            widened::ParcelEvent::Sent {
                to: "Ada".into(),
                grams: 1500,
                fragile: true,
            },
            widened::ParcelEvent::Delivered,
        ])
        .verify();
    let problems = report.problems().join("\n");
    assert!(
        problems.contains("`payload.fragile` is new")
            && problems.contains("Old events of this shape still load")
            && problems.contains("renaming the recording to `Sent.v2.<label>.json`"),
        "{problems}"
    );
}

#[test]
fn without_upcasters_the_old_recording_no_longer_loads() {
    let report = lock::<ParcelEvent>().with_samples(samples()).verify();
    let problems = report.problems().join("\n");
    assert!(
        problems.contains("the recorded `Sent` v1")
            && problems.contains("no longer loads")
            && problems.contains("CR-E0008"),
        "{problems}"
    );
}

#[test]
fn a_type_without_a_sample_is_reported_when_the_enum_lists_its_types() {
    let report = lock::<ParcelEvent>()
        .with_upcasters(upcasters())
        .with_sample(ParcelEvent::Delivered)
        .verify();
    assert_eq!(
        report.problems(),
        [
            "event type `Sent` (v2) has no sample: add .with_sample(ParcelEvent::...) to the lock, \
          so its shape is recorded and checked"
        ]
    );
}

/// A folder of its own under the system's temporary directory, removed
/// when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("shape-lock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_missing_recording_fails_and_says_what_to_run() {
    let scratch = Scratch::new("missing");
    let report = lock::<ParcelEvent>()
        .with_folder(scratch.path())
        .with_samples(samples())
        .verify();
    let problems = report.problems().join("\n");
    assert!(
        problems.contains("`Delivered` v1 has no recording")
            && problems.contains("EVENT_SHAPES=record cargo test -p composable-rust-testing"),
        "{problems}"
    );
    assert!(!scratch.path().exists(), "nothing may be written");
}

#[test]
fn recording_writes_missing_samples_and_rerecords_new_values_only() {
    let scratch = Scratch::new("record");
    let recorded = lock::<ParcelEvent>()
        .with_recording(true)
        .with_folder(scratch.path())
        .with_samples(samples())
        .verify();
    assert!(recorded.is_ok(), "{recorded}");
    assert_eq!(recorded.recorded().len(), 2);
    let text = std::fs::read_to_string(scratch.path().join("Sent.v2.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        json!({ "type": "Sent", "schema_version": 2, "payload": { "to": "Ada", "grams": 1500 } })
    );

    // The same samples again: nothing to do.
    let again = lock::<ParcelEvent>()
        .with_recording(true)
        .with_folder(scratch.path())
        .with_samples(samples())
        .verify();
    assert!(again.is_ok() && again.recorded().is_empty(), "{again}");

    // Other values, same shape: a failure when not recording ...
    let edited = || ParcelEvent::Sent {
        to: "Grace".into(),
        grams: 20,
    };
    let refused = lock::<ParcelEvent>()
        .with_folder(scratch.path())
        .with_sample(edited())
        .with_sample(ParcelEvent::Delivered)
        .verify();
    assert!(
        refused
            .problems()
            .join("\n")
            .contains("has other values than its recording"),
        "{refused}"
    );
    // ... and re-recorded when recording.
    let rerecorded = lock::<ParcelEvent>()
        .with_recording(true)
        .with_folder(scratch.path())
        .with_sample(edited())
        .with_sample(ParcelEvent::Delivered)
        .verify();
    assert!(rerecorded.is_ok(), "{rerecorded}");
    assert_eq!(rerecorded.recorded().len(), 1);
}

#[test]
#[should_panic(expected = "the event-shape lock of ParcelEvent")]
fn check_panics_with_the_report() {
    let scratch = Scratch::new("panics");
    lock::<ParcelEvent>()
        .with_folder(scratch.path())
        .with_samples(samples())
        .check();
}
