//! What the queue commands (`submit`, `worker`, `collect`, `status`) share: where the queue is.

use clap::Args;

/// The Redis server that holds the queue.
#[derive(Args, Debug, Clone)]
pub struct RedisArgs {
    /// The Redis server (6.2 or later) that holds the queue: redis://[USER:PASSWORD@]HOST:PORT[/DB].
    #[arg(long, value_name = "URL", env = "OUTOFSYNC_REDIS")]
    pub redis: String,
}
