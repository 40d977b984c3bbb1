//! The command line, as clap derive structs: what the user typed, validated, and nothing more.
//!
//! House rules (after xh): every flag has a long name; short flags only where curl or oha users expect
//! them; value names are upper case; every default is visible in `--help`; a struct field is named
//! after its long flag. Turning these structs into configurations happens in `commands`.

mod demo;
mod fetch;
mod lab;
mod serve;

use clap::{Parser, Subcommand};

pub use demo::DemoArgs;
pub use fetch::{FetchArgs, InputFormat};

pub use lab::{LabArgs, LabWorkerArgs};
pub use serve::ServeArgs;

/// Fetch data from HTTP APIs asynchronously, fast, and without losing anything.
#[derive(Parser, Debug)]
#[command(name = "outofsync", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// More diagnostics on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the whole system working: 10,000 requests against the built-in API.
    Demo(DemoArgs),
    /// Fetch many requests concurrently; every request ends as exactly one JSON record.
    Fetch(Box<FetchArgs>),
    /// Measure async against threads: the same requests run by five execution models.
    Lab(LabArgs),
    /// Measure one lab cell in this process (started by `outofsync lab`).
    #[command(hide = true)]
    LabWorker(LabWorkerArgs),
    /// Run the built-in JSON API server (the offline target of the demo, tests, lab and benchmarks).
    Serve(ServeArgs),
}
