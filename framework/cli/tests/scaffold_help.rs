//! The `--help` of `composable new` and `composable add`, as snapshots: a
//! change to the text shows up in review. Accept an intended change with
//! `INSTA_UPDATE=always cargo test -p composable-rust-cli --test scaffold_help`.

use clap::CommandFactory;
use composable_rust_cli::Cli;

fn help(subcommand: &str) -> String {
    let mut cli = Cli::command().term_width(100);
    cli.build();
    let command = cli
        .find_subcommand_mut(subcommand)
        .unwrap_or_else(|| panic!("`composable {subcommand}` exists"));
    command.render_long_help().to_string()
}

#[test]
fn new_help() {
    insta::assert_snapshot!("new_help", help("new"));
}

#[test]
fn add_help() {
    insta::assert_snapshot!("add_help", help("add"));
}
