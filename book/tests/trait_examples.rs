//! Every public trait of the framework crates, and every macro they export,
//! has an `# Examples` section with a doctest that rustdoc runs (issue 14:
//! "every public trait has an example").
//!
//! A source scan, since rustdoc's JSON output is not available on stable:
//! for each `pub trait` (and each `#[proc_macro*]` function) in
//! `framework/*/src`, the doc comment right above it (attributes may sit in
//! between) must contain a `# Examples` heading followed by a code fence
//! that is not `ignore` or `text`.

use std::fs;
use std::path::{Path, PathBuf};

/// Rust source files under `dir`, recursively, in a stable order.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The item a line declares, if it is a public trait or a proc-macro entry.
fn documented_item(lines: &[&str], index: usize) -> Option<String> {
    let line = lines[index].trim_start();
    if let Some(rest) = line.strip_prefix("pub trait ") {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        return Some(format!("trait {name}"));
    }
    if line.starts_with("#[proc_macro") {
        let name = lines[index + 1..]
            .iter()
            .find_map(|l| l.trim_start().strip_prefix("pub fn "))
            .map(|rest| rest.split('(').next().unwrap_or(rest).to_owned())?;
        return Some(format!("macro {name}"));
    }
    None
}

/// The doc comment lines (`///` stripped) above line `index`, skipping the
/// attributes between the comment and the item.
fn doc_above(lines: &[&str], index: usize) -> Vec<String> {
    let mut doc = Vec::new();
    let mut i = index;
    while i > 0 {
        i -= 1;
        let line = lines[i].trim_start();
        if let Some(text) = line.strip_prefix("///") {
            doc.push(text.strip_prefix(' ').unwrap_or(text).to_owned());
        } else if line.starts_with("#[") && doc.is_empty() {
            continue;
        } else {
            break;
        }
    }
    doc.reverse();
    doc
}

/// Whether `doc` has an `# Examples` section whose first code fence (before
/// any other heading) is one rustdoc tests: not `ignore`, not another
/// language.
fn has_tested_example(doc: &[String]) -> bool {
    let Some(heading) = doc.iter().position(|l| l.trim() == "# Examples") else {
        return false;
    };
    for line in &doc[heading + 1..] {
        let line = line.trim();
        if line.starts_with("# ") {
            return false; // the next section began before any example
        }
        if let Some(info) = line.strip_prefix("```") {
            return info.split(',').map(str::trim).all(|tag| {
                !matches!(
                    tag,
                    "ignore" | "text" | "console" | "toml" | "sql" | "mermaid" | "json"
                )
            });
        }
    }
    false
}

#[test]
fn every_public_trait_and_macro_has_a_tested_example() {
    let framework = Path::new(env!("CARGO_MANIFEST_DIR")).join("../framework");
    let mut files = Vec::new();
    for krate in fs::read_dir(&framework).expect("framework/ exists") {
        let src = krate.expect("a directory entry").path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut checked = Vec::new();
    let mut missing = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("a readable source file");
        let lines: Vec<&str> = text.lines().collect();
        for index in 0..lines.len() {
            let Some(item) = documented_item(&lines, index) else {
                continue;
            };
            let place = format!(
                "{item} ({}:{})",
                file.strip_prefix(&framework).unwrap_or(file).display(),
                index + 1
            );
            if has_tested_example(&doc_above(&lines, index)) {
                checked.push(place);
            } else {
                missing.push(place);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "these have no `# Examples` section with a tested doctest in their doc comment:\n  {}",
        missing.join("\n  ")
    );
    // The scan must keep finding the traits it is about.
    assert!(
        checked.iter().any(|p| p.starts_with("trait Reducer ")),
        "the scan found no `Reducer` trait: {checked:#?}"
    );
    assert!(
        checked.len() >= 20,
        "only {} items found: {checked:#?}",
        checked.len()
    );
}
