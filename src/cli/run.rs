//! `outofsync run`.

use std::path::PathBuf;

use clap::Args;

/// The arguments of `outofsync run` (its help is on [`Command::Run`](super::Command::Run)).
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
