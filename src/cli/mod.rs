//! The command line, as clap derive structs: what the user typed, validated, and nothing more.
//!
//! House rules (after xh): every flag has a long name; short flags only where curl or oha users expect
//! them; value names are upper case; every default is visible in `--help`; a struct field is named
//! after its long flag; no help text writes `{n}`, which clap renders as a line break (name the
//! placeholder instead: `/bytes/{count}`). Turning these structs into configurations happens in
//! `commands`.

mod auth;
mod collect;
mod demo;
mod fetch;
mod lab;
mod queue;
mod serve;
mod status;
mod submit;
mod values;
mod worker;

use clap::{Parser, Subcommand};

pub use auth::{AuthArgs, ClientAuthArg};
pub use demo::DemoArgs;
pub use fetch::{FetchArgs, InputFormat};

pub use collect::CollectArgs;
pub use lab::{LabArgs, LabWorkerArgs};
pub use serve::ServeArgs;
pub use status::StatusArgs;
pub use submit::SubmitArgs;
pub use values::{HumanDuration, Size};
pub use worker::WorkerArgs;

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
    /// Put a job's requests into a Redis queue, for workers on any number of machines.
    Submit(Box<SubmitArgs>),
    /// Fetch the requests of jobs in a Redis queue, with the engine and options of `fetch`.
    Worker(WorkerArgs),
    /// Write a job's records from a Redis queue into one file, until every input has its record.
    Collect(CollectArgs),
    /// Show how far a job in a Redis queue is, and its workers.
    Status(StatusArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every help text of `command` and of its subcommands, as written (before clap renders it).
    fn help_texts(command: &clap::Command) -> Vec<String> {
        let own = [command.get_about(), command.get_long_about(), command.get_after_help()]
            .into_iter()
            .chain([command.get_after_long_help(), command.get_before_help()])
            .flatten()
            .map(ToString::to_string);
        let args = command
            .get_arguments()
            .flat_map(|arg| [arg.get_help(), arg.get_long_help()])
            .flatten()
            .map(ToString::to_string);
        let mut texts: Vec<String> = own.chain(args).collect();
        texts.extend(command.get_subcommands().flat_map(help_texts));
        texts
    }

    #[test]
    fn no_help_text_writes_braces_n_which_clap_renders_as_a_line_break() {
        let texts = help_texts(&Cli::command());
        assert!(texts.len() > 50, "every command's texts: {}", texts.len());
        for text in texts {
            assert!(!text.contains("{n}"), "{text}");
        }
    }
}
