//! Turns parsed command lines into library calls, one file per subcommand.

mod demo;
mod fetch;
mod serve;
mod signals;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use outofsync::stats::Summary;

use crate::cli::{Cli, Command};

/// Runs a parsed command line; the `ExitCode` is the command's, an `Err` becomes exit code 2.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Fetch(args) => fetch::run(*args),
        Command::Serve(args) => serve::run(args),
    }
}

/// The runtime of the client commands: one worker per core.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the tokio runtime")
}

/// Prints the summary on stderr (unless quiet) and writes it as JSON if asked.
fn report(summary: &Summary, quiet: bool, json: Option<&Path>) -> anyhow::Result<()> {
    if !quiet {
        eprint!("{summary}");
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(summary).expect("a summary serialises");
        std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Diagnostics go to stderr; `RUST_LOG` wins over `-v`.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
