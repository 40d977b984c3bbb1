//! `outofsync worker`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::queue::RedisArgs;

/// Fetch the requests of jobs in a Redis queue, with the engine and options of `fetch`.
///
/// A worker takes requests in batches, renews its leases while they run, and publishes each
/// record with the request's ack in one step: if a slow worker and one that took its request
/// over both finish, only the first record goes out. Every half lease it takes over the requests
/// of workers that stopped. It ends when its job has no request left (with --job), or runs until
/// SIGINT or SIGTERM, taking the jobs in order. On a signal it takes no new request, gives those
/// in flight --grace to finish, and leaves the rest to other workers.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub queue: RedisArgs,
    /// Work on this job only, and end when it has no request left [default: every job, oldest
    /// first, waiting for new ones].
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// Requests in flight at once in this worker [default: the job's -c].
    #[arg(short = 'c', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrency: Option<u64>,
    /// Threads of the event loop (as fetch's).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464): records by outcome,
    /// failures by kind, requests in flight, reclaims, a latency histogram.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// This worker's name in the queue [default: HOST-PID-RANDOM].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// On SIGINT or SIGTERM, how long requests in flight may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// No summary on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}
