//! The `composable` binary: parses the command line and hands it to the
//! library, which does all the work (and is what the tests call).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = composable_rust_cli::Cli::parse();
    match composable_rust_cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
