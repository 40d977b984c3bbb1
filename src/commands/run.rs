//! `outofsync run JOB`: a job file becomes the `fetch` command line it holds; and `fetch
//! --dump-job`, a command line becomes a job file.

use std::process::ExitCode;

use anyhow::Context;
use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, RunArgs};
use crate::job;

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let name = args.job.display().to_string();
    let text =
        std::fs::read_to_string(&args.job).with_context(|| format!("cannot read the job file {name}"))?;
    let held = job::flags_of_job(&text, &name)?;
    let line = held.command_line(&args.flags);
    if args.print_flags {
        println!("outofsync {}", job::shell_line(&line));
        return Ok(ExitCode::SUCCESS);
    }
    let cli = Cli::try_parse_from(std::iter::once("outofsync".to_owned()).chain(line)).map_err(|e| {
        // A value clap refuses is named with the line of the key that gave it.
        let flag = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) => {
                arg.trim_start_matches('-').split([' ', '=']).next().map(str::to_owned)
            }
            _ => None,
        };
        let at = flag
            .and_then(|flag| job::line_of_key(&text, &flag))
            .map(|n| format!(" line {n}"))
            .unwrap_or_default();
        // clap's advice to try `--help` is about a command line; here the fault is in the file.
        let rendered = e.render().to_string();
        let message = rendered.split("\n\nFor more information").next().unwrap_or_default();
        anyhow::anyhow!("{name}{at}: {}", message.trim_start_matches("error: ").trim_end())
    })?;
    let Command::Fetch(fetch) = cli.command else { unreachable!("the command line is fetch's") };
    // What the file holds, not how it is written: comments and order do not change it.
    let digest = outofsync::output::digest(&[job::shell_line(&held.command_line(&[])).as_bytes()]);
    super::fetch::run_with(*fetch, vec![("the job file".to_owned(), digest)])
}

/// `fetch … --dump-job`: the job file of this command line, on stdout.
pub fn dump_job() -> anyhow::Result<ExitCode> {
    let matches = Cli::command().get_matches_from(std::env::args_os());
    let fetch = matches.subcommand_matches("fetch").context("--dump-job is a flag of fetch")?;
    print!("{}", job::job_of_matches(fetch));
    Ok(ExitCode::SUCCESS)
}
