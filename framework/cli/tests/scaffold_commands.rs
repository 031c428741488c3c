//! `composable new` and `composable add` on real directories: what they
//! write, what they refuse, and that a refusal or a dry run writes nothing.
//! (ci/check-template builds and tests a generated project.)

use std::fs;
use std::path::{Path, PathBuf};

use composable_rust_cli::scaffold::{Action, Kind, ScaffoldError, plan_add, plan_new};

/// A fresh directory under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("scaffold-test-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The repository root (a clone of the framework).
fn framework() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A project called `shop` made by `composable new` in `scratch`.
fn new_shop(scratch: &Scratch) -> PathBuf {
    plan_new("shop", &scratch.0, Some(&framework()))
        .unwrap()
        .apply()
        .unwrap();
    scratch.0.join("shop")
}

#[test]
fn new_writes_the_template_with_the_framework_by_path() {
    let scratch = Scratch::new();
    let shop = new_shop(&scratch);
    let manifest = fs::read_to_string(shop.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"shop\""), "{manifest}");
    let facade = framework()
        .canonicalize()
        .unwrap()
        .join("framework/composable-rust");
    assert!(
        manifest.contains(&format!("path = \"{}\"", facade.display())),
        "{manifest}"
    );
    for file in [
        "src/aggregates/order.rs",
        "tests/service.rs",
        "docker-compose.yml",
        "README.md",
    ] {
        assert!(shop.join(file).is_file(), "{file} is missing");
    }
    assert!(!shop.join("cargo-generate.toml").exists());
    let test = fs::read_to_string(shop.join("tests/order.rs")).unwrap();
    assert!(test.contains("use shop::aggregates::order::"), "{test}");
}

#[test]
fn new_refuses_a_directory_with_files_and_a_wrong_framework_path() {
    let scratch = Scratch::new();
    fs::create_dir_all(scratch.0.join("shop")).unwrap();
    fs::write(scratch.0.join("shop/notes.txt"), "mine").unwrap();
    let refused = plan_new("shop", &scratch.0, None).unwrap_err();
    assert!(
        matches!(refused, ScaffoldError::TargetNotEmpty { .. }),
        "{refused}"
    );
    assert!(refused.to_string().starts_with("[CR-E0352]"), "{refused}");

    let wrong = plan_new("other", &scratch.0, Some(&scratch.0)).unwrap_err();
    assert!(
        matches!(wrong, ScaffoldError::InvalidFrameworkPath { .. }),
        "{wrong}"
    );
    assert!(!scratch.0.join("other").exists());
}

#[test]
fn add_creates_the_module_and_its_test_and_registers_them() {
    let scratch = Scratch::new();
    let shop = new_shop(&scratch);
    let plan = plan_add(Kind::Projection, "AccountSummary", &shop.join("src")).unwrap();
    assert_eq!(
        plan.describe(true),
        "would create src/projections/account_summary.rs\n\
         would create tests/account_summary.rs\n\
         would change src/projections/mod.rs: pub mod account_summary;\n\
         would change src/app.rs: applied += self.catch_up(crate::projections::account_summary::AccountSummaryProjection::new()).await?;\n"
    );
    plan.apply().unwrap();

    let module = fs::read_to_string(shop.join("src/projections/account_summary.rs")).unwrap();
    assert!(module.contains("pub struct AccountSummaryProjection<S>"));
    assert!(module.contains("\"account-summary\""));
    let registry = fs::read_to_string(shop.join("src/projections/mod.rs")).unwrap();
    assert!(
        registry.contains("pub mod account_summary;\npub mod order_summaries;\n"),
        "{registry}"
    );
    let app = fs::read_to_string(shop.join("src/app.rs")).unwrap();
    assert!(app.contains("AccountSummaryProjection::new()"), "{app}");
    let test = fs::read_to_string(shop.join("tests/account_summary.rs")).unwrap();
    assert!(
        test.contains("use shop::projections::account_summary::"),
        "{test}"
    );
}

#[test]
fn add_refuses_to_overwrite_and_a_dry_run_writes_nothing() {
    let scratch = Scratch::new();
    let shop = new_shop(&scratch);
    let plan = plan_add(Kind::Aggregate, "Account", &shop).unwrap();
    assert!(plan.files.iter().all(
        |file| !shop.join(&file.path).exists() || matches!(file.action, Action::Change { .. })
    ));
    let before = fs::read_to_string(shop.join("src/aggregates/mod.rs")).unwrap();
    // Planning is the dry run: nothing is written until apply.
    assert!(!shop.join("src/aggregates/account.rs").exists());
    assert_eq!(
        fs::read_to_string(shop.join("src/aggregates/mod.rs")).unwrap(),
        before
    );

    plan.apply().unwrap();
    let again = plan_add(Kind::Aggregate, "Account", &shop).unwrap_err();
    assert!(matches!(again, ScaffoldError::FileExists { .. }), "{again}");
    assert!(again.to_string().starts_with("[CR-E0353]"), "{again}");
    // A plan made before the file appeared is refused at apply, too.
    assert!(matches!(
        plan.apply(),
        Err(ScaffoldError::FileExists { .. })
    ));
}

#[test]
fn add_needs_a_project_from_the_template() {
    let scratch = Scratch::new();
    let outside = plan_add(Kind::Saga, "Transfer", &scratch.0).unwrap_err();
    assert!(
        matches!(outside, ScaffoldError::NotInAProject { .. }),
        "{outside}"
    );

    fs::create_dir_all(scratch.0.join("plain/src")).unwrap();
    fs::write(
        scratch.0.join("plain/Cargo.toml"),
        "[package]\nname = \"plain\"\n",
    )
    .unwrap();
    let plain = plan_add(Kind::Saga, "Transfer", &scratch.0.join("plain")).unwrap_err();
    assert!(
        matches!(plain, ScaffoldError::NotFromTemplate { .. }),
        "{plain}"
    );
    assert!(plain.to_string().contains("src/sagas/mod.rs"), "{plain}");

    let invalid = plan_add(Kind::Saga, "transfer", &scratch.0).unwrap_err();
    assert!(
        matches!(invalid, ScaffoldError::InvalidName { .. }),
        "{invalid}"
    );
}
