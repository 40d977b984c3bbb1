//! `outofsync status`.

use clap::Args;

use super::queue::RedisArgs;

/// Show how far a job in a Redis queue is: inputs finished and left, records waiting for the
/// collector, workers alive, requests taken over from workers that stopped (reclaims), poison.
/// Without --job, one line per job.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub queue: RedisArgs,
    /// The job [default: every job, one line each].
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
