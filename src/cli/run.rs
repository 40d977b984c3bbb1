//! `outofsync run`.

use std::path::PathBuf;

use clap::Args;

/// Run a job file: the flags of `fetch`, kept in a TOML file.
///
/// Each key is a long flag of `fetch` (concurrency = 64, url-template = "…", header = ["A: b"],
/// ordered = true) and "inputs" its inputs; `outofsync fetch … --dump-job` writes one. A key that
/// is not a flag is an error naming its line. FLAGS after the file are added to its own (e.g.
/// --resume, -q); a resume of a run whose job file has changed since is refused, as one with
/// changed flags is.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The job file.
    #[arg(value_name = "JOB")]
    pub job: PathBuf,
    /// Print the equivalent `outofsync fetch` command line and exit.
    #[arg(long)]
    pub print_flags: bool,
    /// More flags of fetch, after the job's own.
    #[arg(value_name = "FLAGS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub flags: Vec<String>,
}
