//! The event-shape lock: stored events outlive the code that wrote them,
//! so a change to an event's serialized shape must come with a schema
//! version bump and an upcaster. [`EventShapeLock`] makes that a test.
//!
//! It keeps one **sample payload per event type and schema version** in a
//! checked-in folder, by default
//!
//! ```text
//! tests/event-shapes/<Enum>/<type>.v<N>.json     e.g. tests/event-shapes/AccountEvent/MoneyDeposited.v2.json
//! ```
//!
//! each holding `{ "type", "schema_version", "payload" }` as the store
//! would keep them. A compatible change that needs no new version (a field
//! added with a default) keeps the old payload as history, renamed
//! `<type>.v<N>.<label>.json`: it is only checked to load. [`check`](EventShapeLock::check) then fails when:
//!
//! 1. a sample the test gives serializes differently from its recording at
//!    the same version: the shape changed without a version bump (the
//!    message says to bump [`Event::schema_version`] and register an
//!    upcaster);
//! 2. a sample has no recording yet (new type or new version): it must be
//!    recorded and committed;
//! 3. the enum lists its types ([`Event::event_types`], filled by
//!    `#[derive(Event)]`) and one of them has no sample in the test;
//! 4. any recording, of any version, no longer decodes into today's type
//!    through the upcasters (a discarded type is fine), or a recording of
//!    the current version does not survive decode and encode unchanged.
//!
//! Recording is explicit: files are only written when the environment
//! variable `EVENT_SHAPES=record` is set and `CI` is not `true`. Otherwise
//! a missing or changed recording is a failure whose message names the
//! command to run (`EVENT_SHAPES=record cargo test -p <package>`), and the
//! new files show up in `git status` for review. Even when recording, a
//! changed *shape* at an already recorded version is refused: only the
//! sample's values may be re-recorded.

mod files;
mod report;
mod shape;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Debug};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use composable_rust_core::event::{decode, encode};
use composable_rust_core::{Event, StoredEvent, Upcasters};

use files::{
    ReadError, Recording, enum_name, file_name, read_recording, record_command, unsafe_file_name,
};
pub use report::ShapeLockReport;
use shape::shape_differences;

/// The environment variable that allows [`EventShapeLock::check`] to
/// write recordings, when set to [`RECORD`].
pub const ENV_VAR: &str = "EVENT_SHAPES";

/// The value of [`ENV_VAR`] that records missing samples and re-records
/// samples whose values (not shape) changed.
pub const RECORD: &str = "record";

/// The folder, relative to the package, that holds the recordings.
pub const DEFAULT_FOLDER: &str = "tests/event-shapes";

/// The shape lock of one event enum `E`. Build it in a test, give it a
/// sample of every event type, and [`check`](Self::check) it.
///
/// ```no_run
/// use composable_rust_core::{Event, Upcasters};
/// use composable_rust_testing::shape_lock::EventShapeLock;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Serialize, Deserialize)]
/// # enum AccountEvent { Opened { owner: String } }
/// # impl Event for AccountEvent {}
/// # fn upcasters() -> Upcasters { Upcasters::new() }
///
/// #[test]
/// fn event_shapes_are_locked() {
///     EventShapeLock::<AccountEvent>::new(env!("CARGO_MANIFEST_DIR"))
///         .with_upcasters(upcasters())
///         .with_sample(AccountEvent::Opened { owner: "Ada".into() })
///         .check();
/// }
/// ```
pub struct EventShapeLock<E: Event> {
    folder: PathBuf,
    upcasters: Upcasters,
    samples: Vec<Recording>,
    recording: bool,
    _event: PhantomData<fn() -> E>,
}

impl<E: Event> EventShapeLock<E> {
    /// The lock of `E` in `<package_dir>/tests/event-shapes/<Enum>`, where
    /// `<Enum>` is `E`'s name without its module path; pass
    /// `env!("CARGO_MANIFEST_DIR")`. Recording is on when
    /// `EVENT_SHAPES=record` and `CI` is not `true`.
    pub fn new(package_dir: impl AsRef<Path>) -> Self {
        let folder = package_dir
            .as_ref()
            .join(DEFAULT_FOLDER)
            .join(enum_name::<E>());
        let recording = recording_allowed(
            std::env::var(ENV_VAR).ok().as_deref(),
            std::env::var("CI").ok().as_deref(),
        );
        Self {
            folder,
            upcasters: Upcasters::new(),
            samples: Vec::new(),
            recording,
            _event: PhantomData,
        }
    }

    /// Keeps the recordings in `folder` instead (two enums of the same
    /// name in one package need folders of their own).
    #[must_use]
    pub fn with_folder(mut self, folder: impl Into<PathBuf>) -> Self {
        self.folder = folder.into();
        self
    }

    /// The upcasters your repository loads with; every recording must
    /// decode through them.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// A sample of one event type, in today's shape. Give one per type.
    ///
    /// # Panics
    ///
    /// When the event does not encode (it is not a serde enum).
    #[must_use]
    pub fn with_sample(mut self, event: E) -> Self {
        let encoded = encode(&event).unwrap_or_else(|error| panic!("{error}"));
        self.samples.push(Recording {
            event_type: encoded.event_type,
            schema_version: encoded.schema_version,
            payload: encoded.payload,
        });
        self
    }

    /// Samples of several event types; see [`with_sample`](Self::with_sample).
    #[must_use]
    pub fn with_samples(self, events: impl IntoIterator<Item = E>) -> Self {
        events.into_iter().fold(self, Self::with_sample)
    }

    /// Whether this lock writes recordings (`EVENT_SHAPES=record`, not on
    /// CI); for tests of the lock itself.
    #[must_use]
    pub fn with_recording(mut self, recording: bool) -> Self {
        self.recording = recording;
        self
    }

    /// The folder the recordings are in.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Runs the checks in the module documentation; records what is
    /// missing when recording is on.
    ///
    /// # Panics
    ///
    /// With every problem found, each saying what to do.
    #[track_caller]
    pub fn check(self) {
        let report = self.verify();
        if !report.problems.is_empty() {
            panic!("{report}");
        }
        for path in &report.recorded {
            eprintln!("event-shape lock: recorded {}", path.display());
        }
    }

    /// The checks of [`check`](Self::check), as a report instead of a
    /// panic (recordings are written as in `check`).
    pub fn verify(self) -> ShapeLockReport {
        let mut report = ShapeLockReport {
            enum_name: enum_name::<E>(),
            folder: self.folder.clone(),
            recording: self.recording,
            problems: Vec::new(),
            recorded: Vec::new(),
        };
        let samples = self.samples_by_key(&mut report);
        self.check_coverage(&samples, &mut report);
        for (key, sample) in &samples {
            self.check_sample(key, sample, &mut report);
        }
        let recordings = self.read_recordings(&mut report);
        for (path, recording) in &recordings {
            self.check_decodes(path, recording, &mut report);
        }
        report
    }

    /// The samples, keyed by (type, version); a second sample of a key is
    /// a problem.
    fn samples_by_key(&self, report: &mut ShapeLockReport) -> BTreeMap<(String, u32), Recording> {
        let mut samples = BTreeMap::new();
        for sample in &self.samples {
            if let Some(name) = unsafe_file_name(&sample.event_type) {
                report.problem(format!(
                    "event type `{}` cannot name a file ({name}); rename it with \
                     #[serde(rename = \"...\")] to letters, digits, `.`, `-` and `_`",
                    sample.event_type
                ));
                continue;
            }
            let key = (sample.event_type.clone(), sample.schema_version);
            if samples.contains_key(&key) {
                report.problem(format!(
                    "two samples of `{}`: give one sample per event type",
                    key.0
                ));
                continue;
            }
            samples.insert(key, sample.clone());
        }
        samples
    }

    /// Every type the enum declares needs a sample.
    fn check_coverage(
        &self,
        samples: &BTreeMap<(String, u32), Recording>,
        report: &mut ShapeLockReport,
    ) {
        let sampled: BTreeSet<&str> = samples.keys().map(|(t, _)| t.as_str()).collect();
        for event_type in E::event_types() {
            if !sampled.contains(event_type) {
                report.problem(format!(
                    "event type `{event_type}` (v{}) has no sample: add \
                     .with_sample({}::...) to the lock, so its shape is recorded and checked",
                    E::schema_version(event_type),
                    report.enum_name
                ));
            }
        }
        if samples.is_empty() && E::event_types().is_empty() {
            report.problem(
                "the lock has no samples: add one .with_sample(...) per event type \
                 (or derive Event, which lists the types, so a forgotten one is reported)"
                    .to_owned(),
            );
        }
    }

    /// Compares a sample with its recording, or records it.
    fn check_sample(
        &self,
        (event_type, version): &(String, u32),
        sample: &Recording,
        report: &mut ShapeLockReport,
    ) {
        let path = self.folder.join(file_name(event_type, *version));
        let recorded = match read_recording(&path) {
            Ok(recorded) => recorded,
            Err(ReadError::Missing) => {
                if self.recording {
                    self.write(&path, sample, report);
                } else {
                    report.problem(format!(
                        "`{event_type}` v{version} has no recording at {}: record it with \
                         `{}`, review the new file and commit it",
                        path.display(),
                        record_command()
                    ));
                }
                return;
            }
            Err(ReadError::Invalid(reason)) => {
                report.problem(format!("{}: {reason}", path.display()));
                return;
            }
        };
        if recorded.payload == sample.payload {
            return;
        }
        let mut differences = Vec::new();
        shape_differences(
            "payload",
            &recorded.payload,
            &sample.payload,
            &mut differences,
        );
        if differences.is_empty() {
            // Same shape, other values: the sample was edited.
            if self.recording {
                self.write(&path, sample, report);
            } else {
                report.problem(format!(
                    "the sample of `{event_type}` v{version} has other values than its \
                     recording {} (same shape); if you changed the sample on purpose, \
                     re-record it with `{}`\n{}",
                    path.display(),
                    record_command(),
                    crate::diff::diff(&recorded.payload, &sample.payload)
                ));
            }
            return;
        }
        let advice = if self.decodes(&recorded) {
            format!(
                "Old events of this shape still load (an added field with a default?), so \
                 no version bump is needed: keep the old payload as history by renaming \
                 the recording to `{event_type}.v{version}.<label>.json` (it must keep \
                 loading), then record today's shape with `{}`. If the meaning changed, \
                 bump the version instead: make `{}::schema_version(\"{event_type}\")` \
                 return {} and register an upcaster from v{version}.",
                record_command(),
                report.enum_name,
                version + 1
            )
        } else {
            format!(
                "Events stored in the old shape would no longer load. Make \
                 `{}::schema_version(\"{event_type}\")` return {} (#[event(version = {})]) \
                 and register an upcaster from v{version} (Upcasters::migrate or register), \
                 then record the new version with `{}`. Keep the v{version} recording: it \
                 proves old events still load.",
                report.enum_name,
                version + 1,
                version + 1,
                record_command()
            )
        };
        report.problem(format!(
            "the shape of `{event_type}` changed without a version bump: it serializes \
             differently from its recording {} at v{version}:\n  - {}\n{advice}",
            path.display(),
            differences.join("\n  - "),
        ));
    }

    /// Whether `recording` decodes into today's type (or is discarded).
    fn decodes(&self, recording: &Recording) -> bool {
        let stored = StoredEvent::builder(&recording.event_type, recording.payload.clone())
            .with_schema_version(recording.schema_version)
            .build();
        decode::<E>(&stored, &self.upcasters).is_ok()
    }

    fn write(&self, path: &Path, sample: &Recording, report: &mut ShapeLockReport) {
        let text = serde_json::to_string_pretty(sample).unwrap_or_default() + "\n";
        let written =
            std::fs::create_dir_all(&self.folder).and_then(|()| std::fs::write(path, text));
        match written {
            Ok(()) => report.recorded.push(path.to_owned()),
            Err(error) => report.problem(format!("cannot write {}: {error}", path.display())),
        }
    }

    /// Every recording in the folder, sorted by file name.
    fn read_recordings(&self, report: &mut ShapeLockReport) -> Vec<(PathBuf, Recording)> {
        let Ok(entries) = std::fs::read_dir(&self.folder) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        let mut recordings = Vec::new();
        for path in paths {
            match read_recording(&path) {
                Ok(recording) => {
                    let expected = file_name(&recording.event_type, recording.schema_version);
                    let stem = expected.trim_end_matches(".json");
                    let name = path
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    // `<type>.v<N>.json`, or `<type>.v<N>.<label>.json`: an
                    // older payload of the same version, kept as history.
                    let history = name
                        .strip_prefix(stem)
                        .is_some_and(|rest| rest.starts_with('.') && rest.len() > ".json".len());
                    if name != expected && !history {
                        report.problem(format!(
                            "{} records `{}` v{}, so it must be named {expected} \
                             (or {stem}.<label>.json for an older payload kept as history)",
                            path.display(),
                            recording.event_type,
                            recording.schema_version
                        ));
                    }
                    recordings.push((path, recording));
                }
                Err(ReadError::Missing) => {}
                Err(ReadError::Invalid(reason)) => {
                    report.problem(format!("{}: {reason}", path.display()));
                }
            }
        }
        recordings
    }

    /// A recording must decode into today's type through the upcasters;
    /// one of the current version must also encode back unchanged.
    fn check_decodes(&self, path: &Path, recording: &Recording, report: &mut ShapeLockReport) {
        let stored = StoredEvent::builder(&recording.event_type, recording.payload.clone())
            .with_schema_version(recording.schema_version)
            .build();
        let decoded = match decode::<E>(&stored, &self.upcasters) {
            Ok(Some(event)) => event,
            // Discarded on purpose by an upcaster: nothing to decode.
            Ok(None) => return,
            Err(error) => {
                report.problem(format!(
                    "the recorded `{}` v{} ({}) no longer loads: {error}",
                    recording.event_type,
                    recording.schema_version,
                    path.display()
                ));
                return;
            }
        };
        // Only today's recording of a type must survive the round trip: an
        // older version, a renamed type or a payload kept as history
        // loads as something else on purpose.
        let canonical = path.file_name().is_some_and(|name| {
            *name == *file_name(&recording.event_type, recording.schema_version)
        });
        match encode(&decoded) {
            Ok(again)
                if !canonical
                    || again.event_type != recording.event_type
                    || again.schema_version != recording.schema_version
                    || again.payload == recording.payload => {}
            Ok(again) => report.problem(format!(
                "the recorded `{}` v{} ({}) decodes, but encodes back differently (a \
                 field serde skips or renames one way only?) {}",
                recording.event_type,
                recording.schema_version,
                path.display(),
                crate::diff::diff(&recording.payload, &again.payload)
            )),
            Err(error) => report.problem(format!("{}: {error}", path.display())),
        }
    }
}

impl<E: Event> Debug for EventShapeLock<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventShapeLock")
            .field("enum", &enum_name::<E>())
            .field("folder", &self.folder)
            .field("samples", &self.samples.len())
            .field("recording", &self.recording)
            .finish_non_exhaustive()
    }
}

/// Whether the lock may write recordings: only when asked
/// (`EVENT_SHAPES=record`) and never on CI (`CI` set to `true` or `1`, as
/// CI services set it), so CI can only ever compare.
fn recording_allowed(event_shapes: Option<&str>, ci: Option<&str>) -> bool {
    let asked = event_shapes == Some(RECORD);
    let on_ci = matches!(ci, Some("true" | "1"));
    asked && !on_ci
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_needs_the_variable_and_no_ci() {
        assert!(recording_allowed(Some("record"), None));
        assert!(recording_allowed(Some("record"), Some("false")));
        assert!(!recording_allowed(Some("record"), Some("true")));
        assert!(!recording_allowed(Some("record"), Some("1")));
        assert!(!recording_allowed(None, None));
        assert!(!recording_allowed(Some("yes"), None));
    }
}
