//! `outofsync collect`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use outofsync::output::Fsync;

use super::queue::RedisArgs;

/// Write a job's records from a Redis queue into one file, until every input has its record.
///
/// The journal rules of `fetch`: one record per input (a record read twice is dropped by its
/// "i"), appended in whole lines and synced to disk before Redis forgets it. Stopped and started
/// again on the same -o, it goes on where it stopped; a second collector on the same file is
/// refused. When every input has its record, the job is marked done and its Redis keys expire
/// after --keep.
#[derive(Args, Debug)]
pub struct CollectArgs {
    #[command(flatten)]
    pub queue: RedisArgs,
    /// The job.
    #[arg(long, value_name = "NAME")]
    pub job: String,
    /// The output file (created, or continued).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    /// never: do not sync before Redis forgets the records (a power cut may then lose them);
    /// interval and always sync each batch.
    #[arg(long, value_name = "WHEN", default_value = "always", value_enum)]
    pub fsync: Fsync,
    /// How long the job's keys stay in Redis once every record is collected.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub keep: Duration,
    /// No summary on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}
