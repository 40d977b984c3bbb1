//! The `outofsync` binary: parses the command line and hands it to the library. Nothing else.

mod cli;
mod commands;
mod demo;
mod metrics;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    commands::init_tracing(cli.verbose);
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("outofsync: {e:#}");
            ExitCode::from(2)
        }
    }
}
