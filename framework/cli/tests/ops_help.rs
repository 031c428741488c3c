//! The `--help` text of every operations subcommand, by snapshot (a change
//! to an option or its documentation shows up in review), and shell
//! completions that know every subcommand.

mod ops_support;

use ops_support::success;

const SUBCOMMANDS: &[&[&str]] = &[
    &["events"],
    &["events", "list"],
    &["events", "show"],
    &["events", "tail"],
    &["projections"],
    &["projections", "status"],
    &["dead-letters"],
    &["dead-letters", "list"],
    &["dead-letters", "show"],
    &["dead-letters", "retry"],
    &["dead-letters", "discard"],
    &["checkpoint"],
    &["checkpoint", "reset"],
    &["rebuilds"],
    &["rebuilds", "status"],
];

#[test]
fn help_of_every_operations_subcommand() {
    for path in SUBCOMMANDS {
        let mut args = path.to_vec();
        args.push("--help");
        let help = success(&args);
        insta::assert_snapshot!(format!("help_{}", path.join("_").replace('-', "_")), help);
    }
}

#[test]
fn bash_completions_know_every_subcommand() {
    let script = success(&["completions", "bash"]);
    for path in SUBCOMMANDS {
        let last = path.last().unwrap();
        assert!(script.contains(last), "`{last}` is not in the completions");
    }
    for option in [
        "--database-url",
        "--schema",
        "--key-prefix",
        "--format",
        "--projection-schema",
    ] {
        assert!(
            script.contains(option),
            "`{option}` is not in the completions"
        );
    }
}
