//! `outofsync submit`.

use std::time::Duration;

use clap::Args;

use super::FetchArgs;
use super::queue::RedisArgs;

/// Put a job's requests into a Redis queue, for workers on any number of machines.
///
/// INPUT and the fetch options are those of `fetch`. The inputs are read, numbered and parsed
/// here (globs expanded, templates filled) and streamed to Redis in batches; the options are
/// stored once with the job, and each worker builds its engine from them. --rate, --per-host and
/// Retry-After cooldowns then hold for the whole fleet, not per worker; -c is each worker's.
/// With --wait (and -o FILE) this process also collects the records, as `outofsync collect`.
/// With --shard K/N only that shard of the input goes into the job, under the whole input's
/// indexes: N jobs, each with its own workers and collector, whose outputs concatenate (one
/// Redis per job, or one Redis Cluster for all). Not for a job: --paginate, --ordered,
/// --at-most-once.
#[derive(Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub queue: RedisArgs,
    /// The job's name: letters, digits, '.', '_' and '-'. A job of that name must not exist.
    #[arg(long, value_name = "NAME", help_heading = "Queue")]
    pub job: String,
    /// How long a worker may hold a request without renewing its lease (it renews every third
    /// of it while it works); a worker silent for longer is taken to have stopped, and others
    /// take its requests over.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration, help_heading = "Queue")]
    pub lease: Duration,
    /// Deliveries of one request to workers that all stopped before finishing it, before it ends
    /// as a failure record instead of being handed out again (poison).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Queue")]
    pub max_deliveries: u64,
    /// Go on submitting a job whose submission was interrupted (the same input and options): the
    /// inputs already in the queue are skipped.
    #[arg(long = "continue", help_heading = "Queue")]
    pub continue_job: bool,
    /// Also collect the records into -o FILE, until every input has one.
    #[arg(long, requires = "output", help_heading = "Queue")]
    pub wait: bool,
    #[command(flatten)]
    pub fetch: FetchArgs,
}
