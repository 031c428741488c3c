//! Embeds the project template (`template/` at the repository root) in the
//! binary, so `composable new` works offline and renders exactly the files
//! `cargo generate --path template` renders.
//!
//! Writes `$OUT_DIR/template_files.rs`: a list of (path relative to the
//! template, contents) with one `include_str!` per file. `include_str!`
//! makes cargo rebuild when a file changes; the `rerun-if-changed` on the
//! directory covers files added or removed.

use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let template = manifest.join("../../template");
    let template = template.canonicalize().unwrap_or_else(|e| {
        panic!(
            "the project template is missing at {}: {e}",
            template.display()
        )
    });
    println!("cargo:rerun-if-changed={}", template.display());

    let mut files = Vec::new();
    collect(&template, &template, &mut files);
    files.sort();
    let mut out =
        String::from("/// The template's files: (path relative to the template, contents).\n");
    out.push_str("pub(crate) static TEMPLATE_FILES: &[(&str, &str)] = &[\n");
    for (relative, absolute) in &files {
        out.push_str(&format!(
            "    ({relative:?}, include_str!({absolute:?})),\n"
        ));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("template_files.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}

/// Every file under `dir`, as (path relative to `root` with `/`, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        // A build or a lock file left in the template by hand is not part of it.
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == "target" || name == "Cargo.lock" {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).expect("under the template");
            let relative: Vec<&str> = relative
                .iter()
                .map(|c| c.to_str().expect("UTF-8 file names"))
                .collect();
            files.push((relative.join("/"), path.display().to_string()));
        }
    }
}
