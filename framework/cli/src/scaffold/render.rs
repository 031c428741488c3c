//! Rendering with liquid, the template engine cargo-generate uses, so one
//! template serves `cargo generate` and `composable new` alike: the
//! project template embedded at build time, and the module templates of
//! `composable add`.

use std::sync::OnceLock;

use super::ScaffoldError;

include!(concat!(env!("OUT_DIR"), "/template_files.rs"));

/// cargo-generate's own configuration file: read by cargo-generate, never
/// part of a generated project.
const CARGO_GENERATE_CONFIG: &str = "cargo-generate.toml";

/// One liquid parser (building it registers the standard tags and filters).
fn parser() -> &'static liquid::Parser {
    static PARSER: OnceLock<liquid::Parser> = OnceLock::new();
    PARSER.get_or_init(|| {
        liquid::ParserBuilder::with_stdlib()
            .build()
            .expect("liquid's standard library builds")
    })
}

/// Renders `source` (named `file` in errors) with `values`.
pub(crate) fn render(
    file: &str,
    source: &str,
    values: &liquid::Object,
) -> Result<String, ScaffoldError> {
    let template_error = |error: liquid::Error| ScaffoldError::Template {
        file: file.to_owned(),
        message: error.to_string(),
    };
    parser()
        .parse(source)
        .map_err(template_error)?
        .render(values)
        .map_err(template_error)
}

/// The project template's files, rendered: (relative path, contents).
pub(crate) fn project_files(
    values: &liquid::Object,
) -> Result<Vec<(String, String)>, ScaffoldError> {
    TEMPLATE_FILES
        .iter()
        .filter(|(path, _)| *path != CARGO_GENERATE_CONFIG)
        .map(|(path, source)| Ok(((*path).to_owned(), render(path, source, values)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(framework_path: &str) -> liquid::Object {
        liquid::object!({
            "project-name": "order-service",
            "crate_name": "order_service",
            "framework_path": framework_path,
        })
    }

    fn file(files: &[(String, String)], path: &str) -> String {
        files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, content)| content.clone())
            .unwrap_or_else(|| panic!("{path} is not rendered"))
    }

    #[test]
    fn every_placeholder_is_replaced() {
        let files = project_files(&values("")).unwrap();
        assert!(files.iter().any(|(p, _)| p == "src/aggregates/order.rs"));
        assert!(!files.iter().any(|(p, _)| p == CARGO_GENERATE_CONFIG));
        for (path, content) in &files {
            assert!(!content.contains("{{"), "{path} still has a placeholder");
            assert!(!content.contains("{%"), "{path} still has a liquid tag");
        }
        assert!(file(&files, "Cargo.toml").contains("name = \"order-service\"\n"));
        assert!(file(&files, "tests/order.rs").contains("use order_service::aggregates::order::"));
    }

    #[test]
    fn the_framework_comes_from_git_or_a_path() {
        let git = file(&project_files(&values("")).unwrap(), "Cargo.toml");
        assert!(git.contains(
            "composable-rust = { git = \"https://github.com/composable-rust/composable-rust.git\", features = [\"postgres\", \"redis\"] }"
        ));
        assert!(!git.contains("path ="));
        let local = file(
            &project_files(&values("/home/ada/composable-rust")).unwrap(),
            "Cargo.toml",
        );
        assert!(local.contains(
            "composable-rust = { path = \"/home/ada/composable-rust/framework/composable-rust\", features = [\"testing\"] }"
        ));
        assert!(!local.contains("git ="));
    }

    #[test]
    fn a_broken_template_reports_its_file() {
        let error = render("broken.rs", "{% if %}", &values("")).unwrap_err();
        assert!(matches!(error, ScaffoldError::Template { ref file, .. } if file == "broken.rs"));
        assert!(error.to_string().starts_with("[CR-E0357]"));
    }
}
