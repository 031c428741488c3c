//! Integration test of checked output (`<!-- output: checked -->`): a tiny
//! book whose build-along chapter prints values that change from run to
//! run (a UUID, a date, a time) in columns whose widths change with them;
//! the follower accepts it as shown, and fails at the command's line with a
//! diff once the chapter shows other output.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use book_checker::{FollowOptions, follow};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Prints a table with a fresh UUID and the current date and time, and a
/// line whose last part the chapter cuts with `...`.
const CHAPTER: &str = r#"# Checked

<!-- build-along -->

<!-- output: checked -->

```console
$ printf 'ID  WHEN\n%s  %s\n' "$(cat /proc/sys/kernel/random/uuid)" "$(date -u '+%Y-%m-%d %H:%M:%S')"
ID                                    WHEN
01936d2c-0000-7000-8000-000000000404  2026-12-06 12:26:09
$ printf 'one\ntwo\nthree\nthe end, at %s\n' "$(date)"
one
...
the end, at ...
```

```console
$ echo not checked
anything at all
```
"#;

struct Fixture {
    root: PathBuf,
}

impl Fixture {
    fn new(chapter: &str) -> Self {
        let root = std::env::temp_dir().join(format!(
            "book-follow-output-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let fixture = Self { root };
        fixture.write("Cargo.lock", "# fixture lock\nversion = 4\n");
        fixture.write(
            "book/src/SUMMARY.md",
            "# Summary\n\n- [Checked](ch01/checked.md)\n",
        );
        fixture.write("book/src/ch01/checked.md", chapter);
        fixture
    }

    fn write(&self, path: &str, content: &str) {
        let path = self.root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn options(&self) -> FollowOptions {
        FollowOptions {
            target_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("follow-output-target")),
            ..FollowOptions::new(&self.root)
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn output_that_differs_only_in_changing_values_passes() {
    let fixture = Fixture::new(CHAPTER);
    let report = follow(&fixture.options());
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    if let Some(scratch) = &report.scratch {
        let _ = std::fs::remove_dir_all(scratch);
    }
}

#[test]
fn other_output_fails_at_the_command_with_a_diff() {
    let fixture = Fixture::new(&CHAPTER.replace("one\n...", "uno\n..."));
    let report = follow(&fixture.options());
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert_eq!(problem.path, Path::new("book/src/ch01/checked.md"));
    assert_eq!(problem.line, Some(11));
    assert!(problem.message.contains("- uno"), "{}", problem.message);
    assert!(problem.message.contains("+ one"), "{}", problem.message);
    if let Some(scratch) = &report.scratch {
        let _ = std::fs::remove_dir_all(scratch);
    }
}
